"""The stage-1 pipeline (handdiff.models.hand_pipeline): hand crops and their masks at crop
resolution, reproducible from the initial noise, the same after a save and reload."""

from __future__ import annotations

import torch

from handdiff.assets.tiny_zoo import model_locations
from handdiff.models.hand_generator import build_hand_generator
from handdiff.models.hand_pipeline import HandGenerationPipeline
from handdiff.models.loading import load_sd_pipeline
from handdiff.models.sd_parts import vae_factor


def test_crops_and_masks_come_at_crop_resolution_and_survive_a_reload(tiny_zoo, tmp_path):
    sd = load_sd_pipeline(model_locations(tiny_zoo)["sd15"])
    pipe = HandGenerationPipeline.from_parts(sd, build_hand_generator(sd.unet, crop_size=32, generator=torch.Generator().manual_seed(1)))
    condition = torch.rand(2, 11, 32, 32, generator=torch.Generator().manual_seed(2))
    side = 32 // vae_factor(sd.vae)
    noise = torch.randn(2, 4, side, side, generator=torch.Generator().manual_seed(3))
    out = pipe(["a hand", "two hands"], condition, num_inference_steps=2, guidance_scale=2.0, latents=noise)
    assert out.images.shape == (2, 3, 32, 32) and out.masks.shape == (2, 1, 32, 32) and out.latents.shape == (2, 4, side, side)
    assert out.images.min() >= 0 and out.images.max() <= 1 and out.masks.min() >= 0 and out.masks.max() <= 1
    latent_only = pipe(["a hand", "two hands"], condition, num_inference_steps=2, guidance_scale=2.0, latents=noise, decode_images=False)
    assert latent_only.images is None and torch.equal(latent_only.latents, out.latents)
    pipe.save_pretrained(tmp_path / "hand")
    again = HandGenerationPipeline.from_pretrained(tmp_path / "hand")
    reloaded = again(["a hand", "two hands"], condition, num_inference_steps=2, guidance_scale=2.0, latents=noise)
    torch.testing.assert_close(reloaded.images, out.images)
    torch.testing.assert_close(reloaded.masks, out.masks)
