from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from handdiff.data import keypoints as kp
from handdiff.data.framing import crop_square, square_around
from handdiff.data.hand_crops import crop_keypoints, make_crops, plan_crops
from handdiff.data.images import decode_image
from handdiff.data.rle import decode_rle, encode_rle
from handdiff.data.selection import stratified_sample


def test_square_grows_by_the_margin_around_the_box_centre():
    assert square_around([10, 20, 40, 20], 0.25) == (10 + 20 - 30, 20 + 10 - 30, 60)  # 40 * 1.5, centred
    assert square_around([0, 0, 2, 2], 0.0, min_side=16)[2] == 16


def test_intersecting_hands_share_one_crop_others_get_one_each():
    apart = plan_crops([[0, 0, 10, 10], [50, 50, 10, 10]], ["left", "right"], 0.25)
    assert [p.sides for p in apart] == [("left",), ("right",)]
    touching = plan_crops([[0, 0, 10, 10], [5, 5, 10, 10]], ["left", "right"], 0.0, min_side=1)
    assert len(touching) == 1 and touching[0].sides == ("left", "right")
    assert (touching[0].x0, touching[0].y0, touching[0].side) == (0, 0, 15)  # the union, square
    assert len(plan_crops([[0, 0, 10, 10]], ["right"], 0.25)) == 1


def test_crop_pads_outside_the_image_with_black_and_keypoints_follow_the_pixels():
    image = np.zeros((100, 100, 3), np.uint8)
    image[40, 30] = 255  # a marked pixel
    keypoints = kp.empty_keypoints()
    keypoints[kp.LEFT_HAND.start] = (30.5, 40.5, 1)  # its centre (pixel-centre convention of the image grid)
    plan = plan_crops([[20, 30, 20, 20]], ["left"], 0.5)[0]  # square 40 px from (10, 20)
    crop = crop_square(image, plan.x0, plan.y0, plan.side, 80, interpolation=0)  # nearest: 2 px per source px
    points = crop_keypoints(keypoints, plan, 80)
    x, y = points[0, :2]
    assert crop[int(y), int(x)].max() == 255 and points[0, 2] == 1
    assert points[21:, 2].sum() == 0  # the right hand is not in this crop
    edge = crop_square(image, -10, -10, 40, 40)
    assert edge[:10].max() == 0 and edge[:, :10].max() == 0  # outside the image: black


def two_hand_record(left_at: tuple[float, float], right_at: tuple[float, float], shape=(120, 160)) -> dict:
    """An annotated record with two 20-px hands (keypoints on a diagonal, box-shaped masks)."""
    keypoints = kp.empty_keypoints()
    masks = []
    for side, (x, y) in (("left", left_at), ("right", right_at)):
        keypoints[kp.hand_slice(side)] = np.column_stack([np.linspace(x, x + 20, 21), np.linspace(y, y + 20, 21), np.ones(21)])
        m = np.zeros(shape, bool)
        m[int(y) : int(y) + 20, int(x) : int(x) + 20] = True
        masks.append(encode_rle(m))
    return {
        "keypoints": keypoints.reshape(-1),
        "hand_sides": ["left", "right"],
        "hand_masks": masks,
        "hand_boxes": [list(kp.hand_box(keypoints[s][:, :2])) for s in (kp.LEFT_HAND, kp.RIGHT_HAND)],
    }


def test_make_crops_from_an_annotated_record():
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    crops = make_crops(two_hand_record((20, 20), (110, 70)), image, 64, 0.25)
    assert [c["sides"] for c in crops] == [["left"], ["right"]]
    for crop in crops:
        assert decode_image(crop["image"]).shape == (64, 64, 3)
        mask = decode_rle(crop["mask"])
        assert mask.shape == (64, 64) and 0.2 < mask.mean() < 0.6  # the hand's box fills the middle of its crop
        points = np.asarray(crop["keypoints"]).reshape(42, 3)
        scored = points[points[:, 2] > 0, :2]
        assert len(scored) == 21 and (scored >= 0).all() and (scored < 64).all()


def test_a_second_hand_inside_a_one_hand_crop_gets_its_keypoints_and_mask():
    # boxes 20 px apart (no intersection); a 50 % margin makes each square 40 px, reaching the other hand
    image = np.zeros((120, 160, 3), np.uint8)
    record = two_hand_record((40, 40), (62, 40))
    assert len(plan_crops(record["hand_boxes"], record["hand_sides"], 0.5)) == 2
    left_crop = make_crops(record, image, 80, 0.5)[0]
    assert left_crop["sides"] == ["left", "right"]
    points = np.asarray(left_crop["keypoints"]).reshape(42, 3)
    assert (points[:21, 2] > 0).all() and 0 < (points[21:, 2] > 0).sum() < 21  # part of the right hand is inside
    mask = decode_rle(left_crop["mask"])
    for x, y, score in points[21:]:
        if score > 0 and x < 78:  # right-hand points inside the crop lie on mask, not background
            assert mask[int(y), int(x) + 1]


def test_stratified_sampling_keeps_shares_is_seeded_and_never_repeats():
    ids = [f"i{k}" for k in range(1000)]
    strata = ["palm"] * 500 + ["fist"] * 300 + ["like"] * 200
    chosen = stratified_sample(ids, strata, 100, seed=1)
    assert len(chosen) == len(set(chosen)) == 100
    by = dict(zip(ids, strata, strict=True))
    assert Counter(by[i] for i in chosen) == {"palm": 50, "fist": 30, "like": 20}
    assert chosen == stratified_sample(ids, strata, 100, seed=1) and chosen != stratified_sample(ids, strata, 100, seed=2)
    assert sorted(stratified_sample(ids, strata, 5000, seed=0)) == sorted(ids)  # asking for more gives all


@pytest.mark.parametrize("count", [7, 33])
def test_stratified_counts_add_up(count):
    ids = [f"i{k}" for k in range(50)]
    strata = ["a", "b", "c"] * 16 + ["a", "b"]
    assert len(stratified_sample(ids, strata, count, seed=0)) == count
