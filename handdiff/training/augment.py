"""Colour augmentation of training crops: RGB shift, then brightness and contrast (SPEC 3.4).

Only colours change, so keypoints and masks stay valid.
"""

from __future__ import annotations

import numpy as np


def color_augment(
    images: np.ndarray, rng: np.random.Generator, p: float = 0.8, rgb_shift: float = 20.0, brightness: float = 0.2, contrast: float = 0.2
) -> np.ndarray:
    """Augment each image of (B, H, W, 3) uint8 with probability ``p``; returns a new array.

    RGB shift: a per-channel offset uniform in [-rgb_shift, rgb_shift] (0-255 scale).
    Brightness / contrast: ``out = (x - mean) * (1 + c) + mean * (1 + b)``, with c uniform in
    [-contrast, contrast] and b in [-brightness, brightness].
    """
    out = images.astype(np.float32)
    for i in range(len(out)):
        if rng.random() >= p:
            continue
        out[i] += rng.uniform(-rgb_shift, rgb_shift, size=3)
        mean = out[i].mean()
        out[i] = (out[i] - mean) * (1 + rng.uniform(-contrast, contrast)) + mean * (1 + rng.uniform(-brightness, brightness))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
