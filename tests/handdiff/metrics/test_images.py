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


def test_fid_of_counted_rows_is_torchmetrics_fid_of_the_rows_repeated():
    """A bootstrap resample's FID from each distinct row once, weighted by how often it was
    drawn, is what torchmetrics' own metric gives on the resampled rows, repeats included."""
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    from handdiff.metrics.images import _Precomputed, fid_from_features

    rng = np.random.default_rng(5)
    real = rng.normal(size=(1000, 192))
    fake = real + rng.normal(0.2, 0.6, (1000, 192))
    drawn = rng.integers(0, 1000, 1000)
    counts = np.bincount(drawn, minlength=1000)
    assert counts.max() > 1 and (counts == 0).any()  # repeats and left-out rows both occur
    direct = FrechetInceptionDistance(feature=_Precomputed())
    direct.update(torch.as_tensor(real[drawn]), real=True)
    direct.update(torch.as_tensor(fake[drawn]), real=False)
    assert fid_from_features(real, fake, counts) == pytest.approx(float(direct.compute()), rel=1e-9)
    assert fid_from_features(real, fake, np.ones(1000, np.int64)) == pytest.approx(fid_from_features(real, fake), rel=1e-9)


def test_kid_over_every_row_is_torchmetrics_value_with_no_spread():
    """With a subset as large as both sides, torchmetrics' 100 subsets are the whole set
    reordered: one gives the same value, and the spread is 0; a smaller subset keeps the 100."""
    import torch
    from torchmetrics.image.kid import KernelInceptionDistance

    from handdiff.metrics.images import _Precomputed, kid_from_features

    torch.manual_seed(0)  # torchmetrics draws KID's subsets from torch's global generator
    rng = np.random.default_rng(6)
    real = rng.normal(size=(40, 192))
    fake = real + rng.normal(0.3, 0.5, (40, 192))
    direct = KernelInceptionDistance(feature=_Precomputed(), subset_size=40)  # torchmetrics' 100 subsets
    direct.update(torch.as_tensor(real), real=True)
    direct.update(torch.as_tensor(fake), real=False)
    mean, spread = direct.compute()
    whole = kid_from_features(real, fake, subset_size=1000)
    assert whole["kid"] == pytest.approx(float(mean), rel=1e-9) and float(spread) < 1e-9 * abs(float(mean))
    assert whole["kid_std"] == 0.0
    smaller = kid_from_features(real, fake, subset_size=10)  # 100 different subsets of 10: a spread, about the same mean
    assert smaller["kid_std"] > 0 and smaller["kid"] == pytest.approx(whole["kid"], rel=0.5)
