"""One stage-2 training step, device-agnostic: the entrypoint decides devices and wrapping.

From a numpy batch (``handdiff.training.body_batches``): the image's latents ``x_0`` (a VAE
draw, or the precomputed mode), the canvas latents ``x_c`` (the VAE's mode, or precomputed),
text embeddings, noise at uniform timesteps; the noisy latents are blended with the canvas
under the hand mask (``x_t = m x_c + (1 - m) x_t``, with ``x_c`` clean as in the paper or
noised to step t with the same noise), the ControlNet sees the skeleton and the hand mask,
the frozen UNet predicts the noise with the ControlNet's residuals, and the loss is the
epsilon MSE outside the hands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from handdiff.models.body_controlnet import blend_latents, body_condition, controlnet_noise, latent_mask, outside_mask_mse
from handdiff.training.frozen import FrozenParts


@dataclass
class BodyStepSettings:
    noised_canvas: bool = False
    """Blend the canvas noised to step t instead of the clean canvas (the paper: clean)."""


def body_training_step(
    controlnet: nn.Module,
    frozen: FrozenParts,
    batch: dict[str, np.ndarray],
    settings: BodyStepSettings,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Forward pass and loss of one batch (call ``.backward()`` on ``["loss"]``); ``frozen.unet`` is SD 1.5's UNet."""
    with torch.no_grad():
        latents = frozen.latents(batch, "latents", "pixels", device, dtype, generator)
        canvas = frozen.latents(batch, "canvas_latents", "canvas", device, dtype, sample=False)
        text = frozen.text_embeddings(batch, device, dtype)
        mask = torch.as_tensor(batch["mask"], device=device)[:, None].float()
        m = latent_mask(mask, latents.shape[-2:])
        noise, timesteps = frozen.noise(latents, generator)
        noisy = frozen.noise_scheduler.add_noise(latents, noise, timesteps)
        if settings.noised_canvas:
            canvas = frozen.noise_scheduler.add_noise(canvas, noise, timesteps)
        blended = blend_latents(noisy, canvas, m)
        skeleton = torch.as_tensor(batch["skeleton"], device=device).permute(0, 3, 1, 2).float() / 255
        condition = body_condition(skeleton, mask).to(dtype)
    prediction = controlnet_noise(frozen.unet, controlnet, blended, timesteps, text, condition)
    return {"loss": outside_mask_mse(prediction, noise, m)}
