"""SAM on a batch of images with their prompts (handdiff.annotation.sam_masker), against segment-anything's own predictor."""

from __future__ import annotations

import numpy as np
from segment_anything import SamPredictor

from handdiff.annotation.masks import MaskPrompt
from handdiff.annotation.sam_masker import SamMasker
from handdiff.assets.tiny_zoo import SAM_ARCH, model_locations
from handdiff.models.loading import load_sam


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
