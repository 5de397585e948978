"""The stage-2 blending strategies of SPEC 6 and the paper's ablation (Table II).

Each gives the latent masks to blend the canvas in with, one per *masked* denoising step
(the last two steps of inference always run unmasked):
- ``sme`` (default, the paper's sequential mask expansion): the hand mask dilated once per
  masked step, the largest first, shrinking to the exact mask at the last masked step, so
  the body is first drawn well clear of the hands and then closes in on them;
- ``naive``: the exact hand mask at every masked step;
- ``bbox``: the square crop regions the hands came from, kept whole.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from handdiff.models.body_controlnet import latent_mask

Strategy = Literal["sme", "naive", "bbox"]
STRATEGIES: tuple[str, ...] = ("sme", "naive", "bbox")


def dilate(mask: torch.Tensor, kernel: int) -> torch.Tensor:
    """Binary dilation of (B, 1, H, W) {0, 1} masks by a ``kernel`` x ``kernel`` square (odd)."""
    if kernel <= 1:
        return mask
    return F.max_pool2d(mask.float(), kernel_size=kernel, stride=1, padding=kernel // 2)


def sequential_mask_expansion(mask: torch.Tensor, steps: int, kernel: int = 3) -> list[torch.Tensor]:
    """``steps`` masks (B, 1, H, W) for the masked denoising steps: the first is ``mask``
    dilated ``steps - 1`` times by a ``kernel`` square, each next one dilated once less, the
    last is ``mask`` itself. Monotone: every mask holds the next one."""
    if kernel % 2 == 0:
        raise ValueError(f"the dilation kernel must be odd, got {kernel}")
    masks = [mask.float()]
    for _ in range(steps - 1):
        masks.append(dilate(masks[-1], kernel))
    return masks[::-1][:steps]


def blend_masks(
    strategy: str, hand_mask: torch.Tensor, square_mask: torch.Tensor, steps: int, latent_size: tuple[int, int], kernel: int = 3
) -> list[torch.Tensor]:
    """Latent masks (B, 1, h, w), one per masked step, for ``strategy``.

    ``hand_mask``: (B, 1, H, W) the exact hands; ``square_mask``: (B, 1, H, W) the crop squares.
    """
    if strategy == "sme":
        return [latent_mask(m, latent_size) for m in sequential_mask_expansion(hand_mask, steps, kernel)]
    if strategy == "naive":
        return [latent_mask(hand_mask, latent_size)] * steps
    if strategy == "bbox":
        return [latent_mask(square_mask, latent_size)] * steps
    raise ValueError(f"blending strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
