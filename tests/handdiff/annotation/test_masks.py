from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from segment_anything import SamPredictor

from handdiff.annotation.masks import MaskPrompt, dilate, expand_box, hand_prompt, person_prompt
from handdiff.annotation.sam_masker import SamMasker
from handdiff.assets.tiny_zoo import SAM_ARCH, model_locations
from handdiff.data import keypoints as kp
from handdiff.data.rle import decode_rle, encode_rle, rle_area
from handdiff.models.loading import load_sam


def test_rle_round_trip_is_coco_rle():
    mask = np.zeros((37, 53), bool)
    mask[5:20, 10:40] = True
    mask[30, 52] = True
    rle = encode_rle(mask)
    assert rle["size"] == [37, 53] and isinstance(rle["counts"], str)
    assert np.array_equal(decode_rle(rle), mask)
    # pycocotools itself reads what we store
    coco = {"size": rle["size"], "counts": rle["counts"].encode()}
    assert mask_utils.area(coco) == mask.sum() and np.array_equal(mask_utils.decode(coco).astype(bool), mask)


def test_dilation_is_a_5x5_square():
    mask = np.zeros((11, 11), bool)
    mask[5, 5] = True
    grown = dilate(mask, 5)
    assert grown.sum() == 25 and grown[3:8, 3:8].all()
    assert np.array_equal(dilate(mask, 1), mask)


def test_rle_area_counts_the_union():
    a, b = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    a[0:5, 0:5] = True
    b[3:8, 3:8] = True
    assert rle_area([encode_rle(a), encode_rle(b)]) == (a | b).sum() == 25 + 25 - 4
    assert rle_area([]) == 0


def test_prompts():
    assert np.allclose(expand_box((10, 10, 20, 10), 0.1, 100, 100), [8, 8, 32, 22])
    assert np.allclose(expand_box((0, 0, 20, 10), 0.5, 25, 100), [0, 0, 25, 20])  # clipped to the image
    hand = np.zeros((21, 3))
    assert hand_prompt(hand, 100, 100, 0.1) is None
    hand[:5] = [[10, 10, 1], [20, 20, 1], [30, 10, 1], [20, 30, 1], [99, 99, 0]]
    prompt = hand_prompt(hand, 100, 100, 0.0)
    assert len(prompt.points) == 4 and np.allclose(prompt.box, [10, 10, 30, 30])
    keypoints = kp.empty_keypoints()
    assert person_prompt(keypoints, 100, 100, 0.1) is None
    keypoints[kp.BODY_INDEX["nose"]] = (50, 20, 1)
    keypoints[kp.BODY_INDEX["left_ankle"]] = (60, 90, 1)
    prompt = person_prompt(keypoints, 100, 100, 0.0)
    assert len(prompt.points) == 0 and np.allclose(prompt.box, [50, 20, 60, 90])


def test_batched_masker_matches_segment_anythings_predictor(tiny_zoo):
    sam = load_sam(model_locations(tiny_zoo)["sam"], SAM_ARCH)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (120, 90, 3), dtype=np.uint8), rng.integers(0, 255, (64, 200, 3), dtype=np.uint8)]
    with_points = MaskPrompt(rng.uniform(20, 60, (7, 2)), np.array([15, 12, 70, 90.0]))
    fewer_points = MaskPrompt(rng.uniform(20, 60, (3, 2)), np.array([5, 5, 50, 50.0]))
    box_only = MaskPrompt(np.zeros((0, 2)), np.array([10, 10, 80, 100.0]))
    masks = SamMasker(sam)(images, [[with_points, box_only, fewer_points], []])
    assert masks[1] == [] and [m.shape for m in masks[0]] == [(120, 90)] * 3
    predictor = SamPredictor(sam)
    predictor.set_image(images[0])
    for prompt, got in zip((with_points, box_only, fewer_points), masks[0], strict=True):
        kwargs = {"point_coords": prompt.points, "point_labels": np.ones(len(prompt.points))} if len(prompt.points) else {}
        expected, _, _ = predictor.predict(box=prompt.box, multimask_output=False, **kwargs)
        assert np.array_equal(expected[0], got)


@pytest.mark.parametrize("kernel", [3, 5])
def test_dilate_only_grows(kernel):
    mask = np.random.default_rng(1).random((40, 40)) > 0.9
    grown = dilate(mask, kernel)
    assert (grown | mask).sum() == grown.sum() and grown.sum() > mask.sum()
