"""Image metrics on the tiny zoo's CLIP and Inception (random weights: plumbing and known answers)."""

from __future__ import annotations

import numpy as np
import pytest

from handdiff.assets.tiny_zoo import model_locations
from handdiff.metrics.images import ClipScorer, fid_kid, foreground
from handdiff.models.loading import inception_weights


def images(n: int, seed: int, size: int = 48) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def test_identical_sets_have_fid_and_kid_near_zero_and_different_ones_do_not(tiny_zoo):
    weights = inception_weights(model_locations(tiny_zoo)["inception"])
    real = images(12, 0)
    same = fid_kid(real, [i.copy() for i in real], weights, subset_size=6)
    assert abs(same["fid"]) < 1e-2 and abs(same["kid"]) < 1e-3
    dark = [(i // 8).astype(np.uint8) for i in images(12, 1)]
    # (the zoo's Inception has random weights, so distances are small, but not zero)
    assert fid_kid(real, dark, weights, subset_size=6)["fid"] > max(1000 * abs(same["fid"]), 1e-3)


def test_clip_scores_are_per_image_and_follow_torchmetrics_range(tiny_zoo):
    scorer = ClipScorer(model_locations(tiny_zoo)["clip"])
    batch = images(3, 2, size=32)
    scores = scorer(batch, ["a person", "a person waving", "a dog"])
    assert scores.shape == (3,) and (scores >= 0).all() and (scores <= 100).all()
    assert scorer(batch[:1], ["a person"])[0] == pytest.approx(scores[0])  # a score depends only on its own pair


def test_foreground_blackens_the_background():
    image = np.full((4, 4, 3), 200, np.uint8)
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    out = foreground(image, mask)
    assert (out[mask] == 200).all() and (out[~mask] == 0).all()


def test_features_path_gives_torchmetrics_own_fid_from_images(tiny_zoo):
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    weights = inception_weights(model_locations(tiny_zoo)["inception"])
    real, fake = images(10, 3), [(i // 2).astype(np.uint8) for i in images(10, 4)]
    direct = FrechetInceptionDistance(feature=192, feature_extractor_weights_path=weights)
    direct.update(torch.as_tensor(np.stack(real)).permute(0, 3, 1, 2), real=True)
    direct.update(torch.as_tensor(np.stack(fake)).permute(0, 3, 1, 2), real=False)
    assert fid_kid(real, fake, weights, subset_size=5)["fid"] == pytest.approx(float(direct.compute()), rel=1e-4)
