"""Placing stage-1 crops into the stage-2 canvas: the inverse of ``handdiff.data.framing.crop_square``,
in pixels or in latents (a latent cell is ``factor`` pixels)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch


def square_window(
    x0: float, y0: float, side: float, height: int, width: int, factor: int = 1
) -> tuple[int, int, int, slice, slice, slice, slice]:
    """Where the square ``(x0, y0, side)`` (pixels) lies on a ``height`` x ``width`` grid of
    ``factor``-pixel cells, following ``crop_square``'s rounding: (left, top, n, target rows,
    target cols, patch rows, patch cols), clipped to the grid."""
    left, top, n = math.floor(x0 / factor), math.floor(y0 / factor), max(1, round(side / factor))
    r0, c0, r1, c1 = max(top, 0), max(left, 0), min(top + n, height), min(left + n, width)
    return left, top, n, slice(r0, r1), slice(c0, c1), slice(r0 - top, r1 - top), slice(c0 - left, c1 - left)


def resize_square(patch: torch.Tensor, n: int, binary: bool = False) -> torch.Tensor:
    """(C, s, s) -> (C, n, n) float on the CPU, by ``crop_square``'s own rule, so that a pasted
    crop is resampled as the training crops were: shrinking averages each output pixel's source
    area (OpenCV's ``INTER_AREA``, no aliasing), growing is bilinear. ``binary``: a {0, 1} mask,
    shrunk by area and thresholded at 0.5 (a majority vote per pixel) and grown nearest, so it
    stays {0, 1}. Works for pixels and latents alike (any channel count)."""
    array = patch.detach().float().cpu().permute(1, 2, 0).numpy()
    shrinking = n < array.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else (cv2.INTER_NEAREST if binary else cv2.INTER_LINEAR)
    out = cv2.resize(array, (n, n), interpolation=interpolation).reshape(n, n, -1)  # OpenCV drops a single channel's axis
    if binary and shrinking:
        out = (out > 0.5).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)


def paste_square(
    target: torch.Tensor,
    patch: torch.Tensor,
    x0: float,
    y0: float,
    side: float,
    where: torch.Tensor | None = None,
    factor: int = 1,
    binary: bool = False,
) -> None:
    """Resize ``patch`` (C, s, s) to the square ``(x0, y0, side)`` (``resize_square``) and write it
    into ``target`` (C, H, W) in place, only where ``where`` (1, s, s, {0, 1}; resized as a
    binary mask) is set. ``factor``: pixels per cell of ``target`` (8 for latents); ``binary``:
    ``patch`` is a {0, 1} mask."""
    height, width = target.shape[-2:]
    _, _, n, rows, cols, prow, pcol = square_window(x0, y0, side, height, width, factor)
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return
    resized = resize_square(patch, n, binary)[:, prow, pcol].to(target.dtype)
    if where is None:
        target[:, rows, cols] = resized
        return
    keep = resize_square(where, n, binary=True)[:, prow, pcol] > 0.5
    target[:, rows, cols] = torch.where(keep, resized, target[:, rows, cols])
