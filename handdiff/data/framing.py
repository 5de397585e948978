"""Square framing shared by every set handdiff builds: hand crops (stage 1), the outpaint set
(stage 2) and the benchmark's conditions. A square is ``(x0, y0, side)`` in source-image
pixels; it is cut out and resized with ``crop_square`` and points follow it with
``points_to_square``, on the same pixel grid.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def square_around(box: list[float], margin: float, min_side: float = 1.0) -> tuple[float, float, float]:
    """``[x, y, w, h]`` -> the square ``(x0, y0, side)`` centred on it, grown by ``margin`` of its longer side per edge."""
    x, y, w, h = box
    side = max(max(w, h) * (1 + 2 * margin), min_side)
    return x + w / 2 - side / 2, y + h / 2 - side / 2, side


def person_square(person_box: list[float], margin: float, width: int, height: int) -> tuple[float, float, float]:
    """The square framing of a person (SPEC 3.4 outpainting, 7 benchmark conditions).

    ``square_around`` the person box, then shifted (not shrunk) to lie inside the
    ``width`` x ``height`` image where it fits, so that as little as possible is padding;
    a square larger than the image stays centred on the person and is padded.
    """
    x0, y0, side = square_around(person_box, margin)
    if side <= width:
        x0 = min(max(x0, 0.0), width - side)
    if side <= height:
        y0 = min(max(y0, 0.0), height - side)
    return x0, y0, side


def crop_square(
    image: np.ndarray, x0: float, y0: float, side: float, size: int, interpolation: int | None = None, fill: int | float = 0
) -> np.ndarray:
    """The square ``(x0, y0, side)`` of ``image`` (H, W[, C]) resized to ``size``; outside is ``fill``."""
    left, top, n = int(math.floor(x0)), int(math.floor(y0)), max(1, int(round(side)))
    h, w = image.shape[:2]
    out = np.full((n, n, *image.shape[2:]), fill, image.dtype)
    sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(left + n, w), min(top + n, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = image[sy0:sy1, sx0:sx1]
    if interpolation is None:
        interpolation = cv2.INTER_AREA if n > size else cv2.INTER_LINEAR
    return cv2.resize(out, (size, size), interpolation=interpolation)


def points_to_square(points: np.ndarray, x0: float, y0: float, side: float, size: int) -> np.ndarray:
    """(N, 3) image keypoints (x_px, y_px, score) -> the same points in the ``size`` square's pixels.

    Follows ``crop_square``'s grid; a point that lands outside the square is absent, ``(0, 0, 0)``.
    """
    scale = size / max(1, int(round(side)))
    xy = (points[:, :2] - [math.floor(x0), math.floor(y0)]) * scale
    inside = (xy >= 0).all(1) & (xy < size).all(1) & (points[:, 2] > 0)
    return np.where(inside[:, None], np.column_stack([xy, points[:, 2]]), 0).astype(np.float32)
