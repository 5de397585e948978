"""SD 1.5's frozen parts as the training steps use them, on the tiny zoo: text from the batch's
precomputed embeddings or encoded now, latents drawn or taken at the mode, noise and timesteps
from the step's generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from handdiff.assets.tiny_zoo import model_locations
from handdiff.models.loading import load_sd_pipeline
from handdiff.models.sd_parts import vae_factor
from handdiff.training.frozen import FrozenParts

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def frozen(tiny_zoo) -> FrozenParts:
    sd = load_sd_pipeline(model_locations(tiny_zoo)["sd15"])
    return FrozenParts(sd.vae, sd.text_encoder, sd.tokenizer, DDPMScheduler.from_config(sd.scheduler.config))


def test_precomputed_embeddings_are_used_and_a_dropped_caption_gets_the_empty_prompts(frozen):
    width = frozen.text_encoder.config.hidden_size
    stored = np.random.default_rng(0).standard_normal((2, 77, width)).astype(np.float32)
    with torch.no_grad():
        text = frozen.text_embeddings({"caption": np.array(["a hand", ""]), "text_embedding": stored}, CPU, torch.float32)
        empty = frozen.text_encoder(frozen.tokenizer([""], padding="max_length", max_length=77, return_tensors="pt").input_ids)[0]
        now = frozen.text_embeddings({"caption": np.array(["a hand", ""])}, CPU, torch.float32)
    assert torch.equal(text[0], torch.as_tensor(stored[0]))  # the batch's own, untouched
    assert torch.allclose(text[1], empty[0], atol=1e-6)  # classifier-free dropout: the empty caption's embedding
    assert now.shape == (2, 77, width) and torch.allclose(now[1], empty[0], atol=1e-6)  # without precomputed ones: encoded now


def test_pixels_become_scaled_latents_drawn_from_the_step_generator_or_at_the_mode(frozen):
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    factor = vae_factor(frozen.vae)
    with torch.no_grad():
        drawn = [frozen.encode_pixels(images, CPU, torch.float32, torch.Generator().manual_seed(s)) for s in (3, 3, 4)]
        mode = frozen.encode_pixels(images, CPU, torch.float32, sample=False)
    assert drawn[0].shape == mode.shape == (2, frozen.vae.config.latent_channels, 32 // factor, 32 // factor)
    assert torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[0], drawn[2])  # the generator decides the draw
    assert not torch.equal(drawn[0], mode)


def test_precomputed_latents_are_used_as_they_are_and_pixels_encoded_otherwise(frozen):
    images = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    stored = np.random.default_rng(3).standard_normal((2, 4, 4, 4)).astype(np.float32)
    with torch.no_grad():
        taken = frozen.latents({"latents": stored, "pixels": images}, "latents", "pixels", CPU, torch.float32)
        encoded = frozen.latents({"pixels": images}, "latents", "pixels", CPU, torch.float32, sample=False)
        direct = frozen.encode_pixels(images, CPU, torch.float32, sample=False)
    assert torch.equal(taken, torch.as_tensor(stored)) and torch.equal(encoded, direct)


def test_noise_and_timesteps_repeat_with_the_generator_and_cover_the_schedule(frozen):
    latents = torch.zeros(64, 4, 4, 4)
    (noise, steps), (again, steps_again) = (frozen.noise(latents, torch.Generator().manual_seed(7)) for _ in range(2))
    assert torch.equal(noise, again) and torch.equal(steps, steps_again) and noise.shape == latents.shape
    assert int(steps.min()) >= 0 and int(steps.max()) < frozen.noise_scheduler.config.num_train_timesteps
    assert len(set(steps.tolist())) > 32  # one uniform draw per sample, not one per batch
