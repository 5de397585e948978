"""Generating hand crops and their masks with the stage-1 model (DDIM, classifier-free guidance).

A saved pipeline is SD 1.5's folder layout with the grown UNet and the mask head::

    <dir>/vae/ text_encoder/ tokenizer/ scheduler/   the frozen SD 1.5 parts
    <dir>/unet/ mask_head/ hand_generator.json       the trained hand generator

(A small class rather than a ``DiffusionPipeline`` subclass: diffusers' loader cannot
import a component class that lives outside diffusers and transformers.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler
from transformers import CLIPTextModel, CLIPTokenizer

from handdiff.models.hand_generator import HandGenerator
from handdiff.models.sampling import decode, denoise, guided_prompts
from handdiff.models.sd_parts import load_sd_parts, save_sd_parts, vae_factor


@dataclass
class HandSamples:
    images: torch.Tensor | None
    """(B, 3, H, W) float in [0, 1]; None when not decoded."""
    masks: torch.Tensor
    """(B, 1, H, W) float, the mask head's prediction at the last step (clamped to [0, 1])."""
    latents: torch.Tensor
    """(B, 4, H/8, W/8) the final latents (scaled, as the UNet sees them), for handing over to stage 2 in latent space."""


class HandGenerationPipeline:
    def __init__(self, vae: AutoencoderKL, text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer, generator: HandGenerator, scheduler):
        self.vae, self.text_encoder, self.tokenizer, self.generator = vae, text_encoder, tokenizer, generator
        self.scheduler = DDIMScheduler.from_config(scheduler.config)

    @classmethod
    def from_parts(cls, sd_pipeline, generator: HandGenerator) -> HandGenerationPipeline:
        """From a loaded ``StableDiffusionPipeline`` (its frozen parts) and a hand generator."""
        return cls(sd_pipeline.vae, sd_pipeline.text_encoder, sd_pipeline.tokenizer, generator, sd_pipeline.scheduler)

    @classmethod
    def from_pretrained(cls, directory: str | Path, torch_dtype: torch.dtype | None = None) -> HandGenerationPipeline:
        kwargs = {"torch_dtype": torch_dtype} if torch_dtype else {}
        return cls(generator=HandGenerator.from_pretrained(directory, **kwargs), **load_sd_parts(directory, torch_dtype))

    def save_pretrained(self, directory: str | Path) -> None:
        save_sd_parts(directory, self.vae, self.text_encoder, self.tokenizer, self.scheduler)
        self.generator.save_pretrained(directory)

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> HandGenerationPipeline:
        for module in (self.vae, self.text_encoder, self.generator):
            module.to(device, dtype)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @torch.no_grad()
    def __call__(
        self,
        prompts: list[str],
        condition: torch.Tensor,
        num_inference_steps: int = 25,
        guidance_scale: float = 7.5,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        decode_images: bool = True,
    ) -> HandSamples:
        """Hand crops for ``prompts`` under ``condition`` (B, 11, H, W) at crop resolution.

        ``latents``: the initial noise (B, 4, H/8, W/8), e.g. drawn per sample from its own seed;
        default: drawn from ``generator``. ``decode_images=False`` skips the VAE decode (``images`` None).
        """
        was_training = self.generator.training
        self.generator.eval()
        device, dtype = self.device, next(self.generator.parameters()).dtype
        batch, _, height, width = condition.shape
        guided = guidance_scale > 1.0
        condition = condition.to(device, dtype)
        condition = torch.cat([condition, condition]) if guided else condition
        text = guided_prompts(self.tokenizer, self.text_encoder, prompts, guided, device, dtype)
        if latents is None:
            factor = vae_factor(self.vae)
            latents = torch.randn((batch, 4, height // factor, width // factor), generator=generator, device="cpu")
        last_mask: list[torch.Tensor] = []

        def predict(model_input: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            noise, mask = self.generator(model_input, t.expand(model_input.shape[0]), text, condition)
            last_mask[:] = [mask.chunk(2)[1] if guided else mask]  # the conditional half's
            return noise

        latents = denoise(self.scheduler, latents.to(device, dtype), predict, num_inference_steps, guidance_scale)
        self.generator.train(was_training)
        images = decode(self.vae, latents) if decode_images else None
        return HandSamples(images, last_mask[0].float().clamp(0, 1), latents)
