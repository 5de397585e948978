"""The paper's colour augmentation (handdiff.training.augment)."""

from __future__ import annotations

import numpy as np

from handdiff.training.augment import color_augment


def test_colour_augmentation_changes_colours_only_at_its_rate():
    images = np.full((50, 8, 8, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    assert np.array_equal(color_augment(images, rng, p=0.0), images)
    out = color_augment(images, rng, p=1.0, rgb_shift=30, brightness=0.0, contrast=0.0)
    shift = out[:, 0, 0].astype(int) - 128
    assert (np.abs(shift) <= 30).all() and len({tuple(s) for s in shift}) > 40  # per-image, per-channel offsets
    assert (out == out[:, :1, :1]).all()  # a uniform image stays uniform: only colours move
