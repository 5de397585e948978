"""Stage 2: the body-outpainting ControlNet and its latent blending (SPEC 5).

The OpenPose ControlNet for SD 1.5 gets a fourth condition channel, the hand mask, beside
the skeleton image (our reading of the paper); the new channel starts at zero, so the grown
model first computes exactly what the OpenPose ControlNet did. SD 1.5's UNet stays frozen.

Latent blending: before every UNet/ControlNet call the latents inside the hands are the
canvas's, ``x_t = m * x_c + (1 - m) * x_t`` with ``x_c = E(canvas)`` (clean, as the paper,
or noised to step t) and ``m`` the hand mask at latent size, so the model only ever has to
draw the body around fixed hands; the loss is the epsilon MSE outside the mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import ControlNetModel
from torch import nn


def grow_controlnet_condition(controlnet: ControlNetModel, extra_channels: int = 1) -> ControlNetModel:
    """Give the ControlNet's condition input ``extra_channels`` more channels, in place.

    The first conv of ``controlnet_cond_embedding`` keeps its pretrained weights for the old
    channels (the skeleton's RGB) and gets zero weights for the new ones, so that the
    grown model reproduces the original's residuals exactly until training moves them; the
    new count is recorded as ``conditioning_channels`` so ``from_pretrained`` rebuilds it.
    """
    old = controlnet.controlnet_cond_embedding.conv_in
    grown = nn.Conv2d(old.in_channels + extra_channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        grown.weight.zero_()
        grown.weight[:, : old.in_channels] = old.weight
        grown.bias.copy_(old.bias)
    controlnet.controlnet_cond_embedding.conv_in = grown.to(old.weight.device, old.weight.dtype)
    controlnet.register_to_config(conditioning_channels=old.in_channels + extra_channels)
    return controlnet


def body_condition(skeleton: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The ControlNet's condition: (B, 3, H, W) skeleton in [0, 1] and (B, 1, H, W) or (B, H, W)
    hand mask -> (B, 4, H, W) float in [0, 1]."""
    if mask.dim() == 3:
        mask = mask[:, None]
    return torch.cat([skeleton.float(), mask.float()], dim=1)


def latent_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) or (B, H, W) hand mask in {0, 1} -> (B, 1, h, w) at latent ``size``: the
    fraction of each latent cell's pixels that are hand (area interpolation, our choice), so
    that a cell half covered by a hand blends half of the canvas in."""
    if mask.dim() == 3:
        mask = mask[:, None]
    return F.interpolate(mask.float(), size=size, mode="area")


def blend_latents(latents: torch.Tensor, canvas_latents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``m * x_c + (1 - m) * x_t``: (B, 4, h, w) latents, canvas latents, (B, 1, h, w) latent mask."""
    mask = mask.to(latents.dtype)
    return mask * canvas_latents.to(latents.dtype) + (1 - mask) * latents


def outside_mask_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the region outside the hands only.

    Each latent cell counts with weight ``1 - m`` (m: (B, 1, h, w) latent mask); the sum is
    divided by the total weight x channels, so the hands' zeros do not dilute the mean. A
    batch whose masks cover everything has no outside: the loss is 0 there.
    """
    weight = (1 - mask.float()).expand_as(prediction)
    squared = (prediction.float() - target.float()) ** 2
    return (squared * weight).sum() / weight.sum().clamp_min(1e-8)


def controlnet_noise(
    unet: nn.Module,
    controlnet: nn.Module,
    latents: torch.Tensor,
    timesteps: torch.Tensor,
    text: torch.Tensor,
    condition: torch.Tensor,
    conditioning_scale: float = 1.0,
) -> torch.Tensor:
    """The UNet's noise prediction with the ControlNet's residuals added (one denoising call)."""
    down, mid = controlnet(
        latents, timesteps, text, controlnet_cond=condition.to(latents.dtype), conditioning_scale=conditioning_scale, return_dict=False
    )
    return unet(latents, timesteps, text, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
