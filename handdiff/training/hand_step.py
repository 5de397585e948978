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


@dataclass
class FrozenParts:
    """The frozen SD 1.5 parts a step needs (on the training device)."""

    vae: nn.Module
    text_encoder: nn.Module
    tokenizer: object
    noise_scheduler: object  # a DDPMScheduler with SD 1.5's schedule

    def encode_text(self, captions: list[str], device: torch.device) -> torch.Tensor:
        ids = self.tokenizer(captions, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True,
                             return_tensors="pt").input_ids.to(device)  # fmt: skip
        return self.text_encoder(ids)[0]


@dataclass
class StepSettings:
    sigma: float = 8.0
    """Heatmap Gaussian std, pixels at crop resolution (our choice, scaled with the crop size)."""
    mask_dropout: float = 0.5
    mask_weight: float = 0.5


def hand_training_step(model: nn.Module, frozen: FrozenParts, batch: dict[str, np.ndarray], settings: StepSettings,
                       device: torch.device, dtype: torch.dtype = torch.float32,
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """Forward pass and loss of one batch (call ``.backward()`` on ``["loss"]``)."""
    with torch.no_grad():
        if "latents" in batch:
            latents = torch.as_tensor(batch["latents"], device=device).to(dtype)
            text = torch.as_tensor(batch["text_embedding"], device=device).to(dtype)
            dropped = torch.as_tensor(np.array([c == "" for c in batch["caption"]]), device=device)
            if dropped.any():
                text[dropped] = frozen.encode_text([""], device).to(dtype)[0]
        else:
            pixels = torch.as_tensor(batch["pixels"], device=device).permute(0, 3, 1, 2).to(dtype) / 127.5 - 1
            latents = frozen.vae.encode(pixels).latent_dist.sample(generator) * frozen.vae.config.scaling_factor
            text = frozen.encode_text(list(batch["caption"]), device).to(dtype)
        mask = torch.as_tensor(batch["mask"], device=device).to(dtype)[:, None]
        condition = hand_condition(torch.as_tensor(batch["keypoints"], device=device), mask, settings.sigma).to(dtype)
        condition = drop_mask_channel(condition, settings.mask_dropout, generator)
        noise = torch.randn(latents.shape, generator=generator, device="cpu").to(device, dtype)
        steps = frozen.noise_scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, steps, (latents.shape[0],), generator=generator, device="cpu").to(device)
        noisy = frozen.noise_scheduler.add_noise(latents, noise, timesteps)
    noise_pred, mask_pred = model(noisy, timesteps, text, condition)
    return hand_generator_loss(noise_pred, noise, mask_pred, mask, settings.mask_weight)
