"""One stage-1 training step, device-agnostic: the entrypoint decides devices and wrapping.

From a numpy batch (``handdiff.training.hand_batches``): VAE latents (or the precomputed
ones), CLIP text embeddings (or the precomputed ones), the condition ``c_p`` built on the
device from keypoints and mask with the mask channel dropped at ``mask_dropout``, noise at
uniform timesteps, and the loss ``L_LDM + mask_weight * mask MSE``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from handdiff.models.conditioning import drop_mask_channel, hand_condition
from handdiff.models.hand_generator import hand_generator_loss
from handdiff.training.frozen import FrozenParts


@dataclass
class StepSettings:
    sigma: float = 8.0
    """Heatmap Gaussian std, pixels at crop resolution (our choice, scaled with the crop size)."""
    mask_dropout: float = 0.5
    mask_weight: float = 0.5


def hand_training_step(
    model: nn.Module,
    frozen: FrozenParts,
    batch: dict[str, np.ndarray],
    settings: StepSettings,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Forward pass and loss of one batch (call ``.backward()`` on ``["loss"]``)."""
    with torch.no_grad():
        latents = frozen.latents(batch, "latents", "pixels", device, dtype, generator)
        text = frozen.text_embeddings(batch, device, dtype)
        mask = torch.as_tensor(batch["mask"], device=device).to(dtype)[:, None]
        condition = hand_condition(torch.as_tensor(batch["keypoints"], device=device), mask, settings.sigma).to(dtype)
        condition = drop_mask_channel(condition, settings.mask_dropout, generator)
        noise, timesteps = frozen.noise(latents, generator)
        noisy = frozen.noise_scheduler.add_noise(latents, noise, timesteps)
    noise_pred, mask_pred = model(noisy, timesteps, text, condition)
    return hand_generator_loss(noise_pred, noise, mask_pred, mask, settings.mask_weight)
