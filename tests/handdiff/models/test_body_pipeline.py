"""The body outpainting pipeline (handdiff.models.body_pipeline): blending keeps the canvas, and it reloads with its settings."""

from __future__ import annotations

import pytest
import torch

from handdiff.assets.tiny_zoo import model_locations
from handdiff.models.body_controlnet import grow_controlnet_condition
from handdiff.models.body_pipeline import BodyOutpaintPipeline
from handdiff.models.loading import load_sd_pipeline
from tests.handdiff.models.test_body_controlnet import pretrained_controlnet


def tiny_pipeline(zoo: str) -> BodyOutpaintPipeline:
    sd = load_sd_pipeline(model_locations(zoo)["sd15"])
    return BodyOutpaintPipeline.from_parts(sd, grow_controlnet_condition(pretrained_controlnet(zoo)))


def inputs(size: int = 64):
    g = torch.Generator().manual_seed(2)
    mask = torch.zeros(1, 1, size, size)
    mask[..., 16:40, 16:40] = 1
    return torch.rand(1, 3, size, size, generator=g), mask, torch.rand(1, 3, size, size, generator=g)


def test_the_pipeline_keeps_the_canvas_latents_under_the_mask_and_reloads(tiny_zoo, tmp_path, monkeypatch):
    pipe = tiny_pipeline(tiny_zoo)
    skeleton, mask, canvas = inputs()
    canvas_latents = pipe.encode_canvas(canvas)
    seen = []  # the latents each ControlNet call sees

    original = pipe.controlnet.forward

    def spy(sample, *args, **kwargs):
        seen.append(sample.detach().clone())
        return original(sample, *args, **kwargs)

    monkeypatch.setattr(pipe.controlnet, "forward", spy)
    hard = torch.zeros(1, 1, 8, 8)
    hard[..., 2:5, 2:5] = 1  # 16:40 px = latent cells 2..4
    out = pipe(
        ["a person"],
        skeleton,
        mask,
        canvas_latents=canvas_latents,
        num_inference_steps=4,
        guidance_scale=1.0,
        generator=torch.Generator().manual_seed(0),
        blend_masks=[hard] * 2,
        unmasked_last_steps=2,
    )
    assert out.images.shape == (1, 3, 64, 64) and out.images.min() >= 0 and out.images.max() <= 1
    assert len(seen) == 4
    inside = hard.bool().expand(1, 4, 8, 8)
    for x in seen[:2]:  # masked steps: the canvas's latents under the mask (scale_model_input is identity for DDIM)
        assert torch.equal(x[inside], canvas_latents[inside])
    for x in seen[2:]:  # the two unmasked steps: free
        assert not torch.allclose(x[inside], canvas_latents[inside])
    assert not torch.allclose(seen[0][~inside], canvas_latents[~inside])  # outside: the noisy latents

    pipe.save_pretrained(tmp_path / "body")
    again = BodyOutpaintPipeline.from_pretrained(tmp_path / "body")
    a = pipe(["a person"], skeleton, mask, canvas=canvas, num_inference_steps=2, generator=torch.Generator().manual_seed(3))
    b = again(["a person"], skeleton, mask, canvas=canvas, num_inference_steps=2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.images, b.images)  # same seed, reloaded model: the same image, bit for bit
    with pytest.raises(ValueError, match="3 masks for 2 masked denoising steps"):
        pipe(["a person"], skeleton, mask, canvas=canvas, num_inference_steps=4, blend_masks=[hard] * 3, unmasked_last_steps=2)
