"""Placing stage-1 crops into the stage-2 canvas: the inverse of ``handdiff.data.framing.crop_square``,
in pixels or in latents (a latent cell is ``factor`` pixels)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def square_window(x0: float, y0: float, side: float, height: int, width: int, factor: int = 1) -> tuple[int, int, int, slice, slice, slice, slice]:
    """Where the square ``(x0, y0, side)`` (pixels) lies on a ``height`` x ``width`` grid of
    ``factor``-pixel cells, following ``crop_square``'s rounding: (left, top, n, target rows,
    target cols, patch rows, patch cols), clipped to the grid."""
    left, top, n = math.floor(x0 / factor), math.floor(y0 / factor), max(1, round(side / factor))
    r0, c0, r1, c1 = max(top, 0), max(left, 0), min(top + n, height), min(left + n, width)
    return left, top, n, slice(r0, r1), slice(c0, c1), slice(r0 - top, r1 - top), slice(c0 - left, c1 - left)


def paste_square(target: torch.Tensor, patch: torch.Tensor, x0: float, y0: float, side: float, where: torch.Tensor | None = None,
                 factor: int = 1, mode: str = "bilinear") -> None:  # fmt: skip
    """Resize ``patch`` (C, s, s) to the square ``(x0, y0, side)`` and write it into ``target``
    (C, H, W) in place, only where ``where`` (1, s, s, {0, 1}; resized nearest) is set.
    ``factor``: pixels per cell of ``target`` (8 for latents)."""
    height, width = target.shape[-2:]
    _, _, n, rows, cols, prow, pcol = square_window(x0, y0, side, height, width, factor)
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    resized = F.interpolate(patch[None].to(target.dtype), size=(n, n), mode=mode, **kwargs)[0][:, prow, pcol]
    if where is None:
        target[:, rows, cols] = resized
        return
    keep = F.interpolate(where[None].float(), size=(n, n), mode="nearest")[0][:, prow, pcol] > 0.5
    target[:, rows, cols] = torch.where(keep, resized, target[:, rows, cols])
