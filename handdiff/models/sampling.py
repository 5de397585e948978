"""The one sampling core of every generator that runs its own denoising loop: stage 1 (the hand
generator is not a diffusers UNet), stage 2 (latent blending before each step, a 4-channel
ControlNet condition that diffusers' ControlNet pipeline would treat as latents) and HumanSD (an
8-channel UNet fed the pose latents beside the noise). The baselines that diffusers' own
pipelines run as their authors ran them (SD 1.5, ControlNet, T2I-Adapter, HandRefiner) use
those pipelines, with ``seeded_noise`` as their ``latents``.

The loop is diffusers' pipelines' own (``StableDiffusionPipeline.__call__``): initial noise
times ``init_noise_sigma``, classifier-free guidance on a doubled batch (unconditional half
first) when ``guidance_scale > 1``, ``scale_model_input``, ``scheduler.step``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from handdiff.models.sd_parts import encode_prompts

Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(model input (B or 2B, C, h, w), timestep) -> predicted noise of the same shape (the
unconditional half first when guided)."""

BeforeStep = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]
"""(step index, timestep, latents (B, C, h, w)) -> the latents the step starts from."""


def seed_generators(seeds: Sequence[int], offset: int = 0) -> list[torch.Generator]:
    """One CPU generator per image, seeded ``seed + offset``: what an image draws depends only on its seed."""
    return [torch.Generator().manual_seed(int(seed) + offset) for seed in seeds]


def seeded_noise(generators: Sequence[torch.Generator], shape: Sequence[int]) -> torch.Tensor:
    """(B, *shape) standard normal noise, row b drawn from ``generators[b]`` on the CPU (so that an
    image's noise is the same on every device and in every batch)."""
    return torch.cat([torch.randn((1, *shape), generator=g) for g in generators])


def guided_prompts(tokenizer, text_encoder, prompts: Sequence[str], guided: bool, device, dtype: torch.dtype) -> torch.Tensor:
    """(B, 77, D) CLIP embeddings of ``prompts``; guided: (2B, 77, D), the empty prompt's first."""
    text = encode_prompts(tokenizer, text_encoder, list(prompts), device)
    if guided:
        text = torch.cat([encode_prompts(tokenizer, text_encoder, [""] * len(prompts), device), text])
    return text.to(dtype)


@torch.no_grad()
def denoise(
    scheduler, noise: torch.Tensor, predict: Predict, steps: int, guidance_scale: float, before_step: BeforeStep | None = None
) -> torch.Tensor:
    """Latents (B, C, h, w) denoised from ``noise`` (unit variance, on the model's device and
    dtype) in ``steps`` steps of ``scheduler``, guided when ``guidance_scale > 1``.
    ``before_step`` may replace the latents before each step (stage 2's blending)."""
    guided = guidance_scale > 1.0
    scheduler.set_timesteps(steps, device=noise.device)
    latents = noise * scheduler.init_noise_sigma
    for i, t in enumerate(scheduler.timesteps):
        if before_step is not None:
            latents = before_step(i, t, latents)
        model_input = scheduler.scale_model_input(torch.cat([latents, latents]) if guided else latents, t)
        predicted = predict(model_input, t)
        if guided:
            uncond, cond = predicted.chunk(2)
            predicted = uncond + guidance_scale * (cond - uncond)
        latents = scheduler.step(predicted, t, latents).prev_sample
    return latents


@torch.no_grad()
def decode(vae, latents: torch.Tensor) -> torch.Tensor:
    """(B, 4, h, w) scaled latents -> (B, 3, h*f, w*f) float32 images in [0, 1]."""
    images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
    return ((images.float() + 1) / 2).clamp(0, 1)
