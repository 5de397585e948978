"""The sampling core: it denoises as diffusers' own Stable Diffusion pipeline does, guidance and
the per-step hook do what they say, and an image's noise depends only on its seed."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler

from handdiff.assets.tiny_zoo import model_locations
from handdiff.models.loading import load_sd_pipeline
from handdiff.models.sampling import decode, denoise, guided_prompts, seed_generators, seeded_noise


def test_each_row_of_noise_comes_from_its_own_seed_whatever_the_batch():
    noise = seeded_noise(seed_generators([5, 7]), (4, 3, 3))
    assert noise.shape == (2, 4, 3, 3)
    assert torch.equal(noise[1], torch.randn((4, 3, 3), generator=torch.Generator().manual_seed(7)))
    assert torch.equal(seeded_noise(seed_generators([7]), (4, 3, 3))[0], noise[1])
    assert torch.equal(seeded_noise(seed_generators([6], offset=1), (4, 3, 3))[0], noise[1])


def test_the_core_denoises_as_diffusers_stable_diffusion_pipeline_does(tiny_zoo):
    sd = load_sd_pipeline(model_locations(tiny_zoo)["sd15"])
    sd.scheduler = DDIMScheduler.from_config(sd.scheduler.config)
    sd.set_progress_bar_config(disable=True)
    noise = seeded_noise(seed_generators([3, 4]), (4, 8, 8))
    prompts = ["a person waving", "a person"]
    expected = sd(
        prompts, height=64, width=64, num_inference_steps=4, guidance_scale=7.5, latents=noise.clone(), output_type="latent"
    ).images
    text = guided_prompts(sd.tokenizer, sd.text_encoder, prompts, True, "cpu", torch.float32)
    ours = denoise(DDIMScheduler.from_config(sd.scheduler.config), noise, lambda x, t: sd.unet(x, t, text).sample, 4, 7.5)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    images = decode(sd.vae, ours)
    assert images.shape == (2, 3, 64, 64) and images.min() >= 0 and images.max() <= 1


def linear_scheduler() -> DDIMScheduler:
    return DDIMScheduler(num_train_timesteps=10, beta_schedule="linear", clip_sample=False, set_alpha_to_one=True)


def test_guidance_extrapolates_from_the_unconditional_half_to_the_conditional_one():
    noise = torch.ones(1, 1, 2, 2)
    unconditional, conditional = 0.2, 0.5

    def halves(x, t):  # the doubled batch: unconditional first
        return torch.cat([torch.full_like(x[:1], unconditional), torch.full_like(x[1:], conditional)])

    guided = denoise(linear_scheduler(), noise, halves, 3, 4.0)
    by_hand = denoise(
        linear_scheduler(), noise, lambda x, t: torch.full_like(x, unconditional + 4.0 * (conditional - unconditional)), 3, 1.0
    )
    torch.testing.assert_close(guided, by_hand)
    unguided_inputs = []
    denoise(linear_scheduler(), noise, lambda x, t: unguided_inputs.append(x.shape[0]) or torch.zeros_like(x), 3, 1.0)
    assert unguided_inputs == [1, 1, 1]


def test_the_hook_runs_before_every_step_and_its_latents_are_stepped():
    seen = []

    def replace(i, t, latents):
        seen.append((i, int(t)))
        return torch.zeros_like(latents)

    scheduler = linear_scheduler()
    out = denoise(scheduler, torch.ones(1, 1, 2, 2), lambda x, t: torch.zeros_like(x), 3, 1.0, before_step=replace)
    assert seen == [(i, int(t)) for i, t in enumerate(scheduler.timesteps)]
    assert torch.equal(out, torch.zeros(1, 1, 2, 2))  # zero latents with zero noise predicted stay zero
