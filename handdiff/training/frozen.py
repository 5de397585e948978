"""SD 1.5's frozen parts as both training steps use them, and the encodings they make:
latents of pixels and embeddings of captions, or the precomputed ones from the batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from handdiff.models.sd_parts import encode_prompts


@dataclass
class FrozenParts:
    """The frozen SD 1.5 parts a step needs (on the training device)."""

    vae: nn.Module
    text_encoder: nn.Module
    tokenizer: object
    noise_scheduler: object  # a DDPMScheduler with SD 1.5's schedule
    unet: nn.Module | None = None  # stage 2 only: the frozen UNet the ControlNet steers

    def encode_text(self, captions: list[str], device: torch.device) -> torch.Tensor:
        return encode_prompts(self.tokenizer, self.text_encoder, captions, device)

    def encode_pixels(
        self, images: np.ndarray, device: torch.device, dtype: torch.dtype, generator: torch.Generator | None = None, sample: bool = True
    ) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, 4, H/8, W/8) scaled latents: a draw from the VAE's
        distribution (``sample``, as training targets) or its mode."""
        pixels = torch.as_tensor(images, device=device).permute(0, 3, 1, 2).to(dtype) / 127.5 - 1
        dist = self.vae.encode(pixels).latent_dist
        return (dist.sample(generator) if sample else dist.mode()) * self.vae.config.scaling_factor

    def latents(
        self,
        batch: dict[str, np.ndarray],
        precomputed: str,
        pixels: str,
        device: torch.device,
        dtype: torch.dtype,
        generator: torch.Generator | None = None,
        sample: bool = True,
    ) -> torch.Tensor:
        """(B, 4, H/8, W/8): the batch's ``precomputed`` latents where the set has them (its
        precompute), else its ``pixels`` encoded now (``encode_pixels``)."""
        if precomputed in batch:
            return torch.as_tensor(batch[precomputed], device=device).to(dtype)
        return self.encode_pixels(batch[pixels], device, dtype, generator, sample)

    def text_embeddings(self, batch: dict[str, np.ndarray], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(B, 77, D): the batch's precomputed ``text_embedding`` (the empty caption's embedding
        where a caption was dropped to ""), else the captions encoded now."""
        if "text_embedding" not in batch:
            return self.encode_text(list(batch["caption"]), device).to(dtype)
        text = torch.as_tensor(batch["text_embedding"], device=device).to(dtype)
        dropped = torch.as_tensor(np.array([c == "" for c in batch["caption"]]), device=device)
        if dropped.any():
            text[dropped] = self.encode_text([""], device).to(dtype)[0]
        return text

    def noise(self, latents: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian noise like ``latents`` and uniform training timesteps, one per sample
        (drawn on the CPU generator so that runs repeat on any device)."""
        noise = torch.randn(latents.shape, generator=generator, device="cpu").to(latents.device, latents.dtype)
        steps = self.noise_scheduler.config.num_train_timesteps
        return noise, torch.randint(0, steps, (latents.shape[0],), generator=generator, device="cpu").to(latents.device)
