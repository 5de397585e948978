"""Stage-2 model surgery, latent blending, the outside-mask loss and the outpainting pipeline."""

from __future__ import annotations

import pytest
import torch
from diffusers import ControlNetModel

from handdiff.assets.tiny_zoo import model_locations
from handdiff.models.body_controlnet import blend_latents, body_condition, grow_controlnet_condition, latent_mask, outside_mask_mse
from handdiff.models.loading import load_controlnet


def pretrained_controlnet(zoo: str) -> ControlNetModel:
    """The zoo's OpenPose ControlNet with its zero convolutions perturbed: a fresh ControlNet's
    residuals are all zero, which would make any equality check pass."""
    controlnet = load_controlnet(model_locations(zoo)["controlnet"])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in controlnet.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return controlnet


def residuals(controlnet, condition, seed=0):
    g = torch.Generator().manual_seed(seed)
    latents, text = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 77, 32, generator=g)
    down, mid = controlnet(latents, torch.tensor([10, 600]), text, controlnet_cond=condition, return_dict=False)
    return [*down, mid]


def test_the_grown_controlnet_reproduces_the_openpose_residuals_until_trained(tiny_zoo, tmp_path):
    original = pretrained_controlnet(tiny_zoo)
    grown = grow_controlnet_condition(pretrained_controlnet(tiny_zoo))
    assert grown.controlnet_cond_embedding.conv_in.in_channels == 4 and grown.config.conditioning_channels == 4
    g = torch.Generator().manual_seed(1)
    skeleton, mask = torch.rand(2, 3, 64, 64, generator=g), (torch.rand(2, 1, 64, 64, generator=g) > 0.5).float()
    before = residuals(original, skeleton)
    assert any(r.abs().max() > 0 for r in before)
    after = residuals(grown, body_condition(skeleton, mask))
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))  # exactly, whatever the mask
    grown.save_pretrained(tmp_path / "controlnet")
    reloaded = ControlNetModel.from_pretrained(tmp_path / "controlnet")
    assert reloaded.config.conditioning_channels == 4
    assert all(torch.equal(a, b) for a, b in zip(after, residuals(reloaded, body_condition(skeleton, mask)), strict=True))
    with torch.no_grad():
        grown.controlnet_cond_embedding.conv_in.weight[:, 3] += 0.5  # once the mask channel is trained, the mask matters
    assert not torch.equal(residuals(grown, body_condition(skeleton, mask))[0], after[0])


def test_blending_keeps_the_canvas_inside_and_the_latents_outside():
    latents, canvas = torch.zeros(1, 4, 2, 2), torch.ones(1, 4, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.5, 0.0]]]])
    out = blend_latents(latents, canvas, mask)
    assert out[0, :, 0, 0].tolist() == [1] * 4 and out[0, :, 0, 1].tolist() == [0] * 4 and out[0, :, 1, 0].tolist() == [0.5] * 4


def test_the_latent_mask_is_each_cells_hand_fraction():
    mask = torch.zeros(1, 16, 16)
    mask[0, :8, :8] = 1
    mask[0, 8:12, 8:16] = 1
    small = latent_mask(mask, (2, 2))
    assert small.shape == (1, 1, 2, 2) and small[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.5]]


def test_the_loss_is_a_mean_over_the_outside_only():
    prediction, target = torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)
    prediction[0, :, 0, 0] = 100.0  # error inside the hands: ignored
    prediction[0, :, 1, 1] = 2.0  # error 4 in one of the three outside cells
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert outside_mask_mse(prediction, target, mask).item() == pytest.approx(4 / 3)  # not 4 / 4 (a diluted mean)
    half = torch.tensor([[[[0.5, 0.0], [0.0, 0.0]]]])
    assert outside_mask_mse(prediction, target, half).item() == pytest.approx((0.5 * 10000 + 4) / 3.5)
    assert outside_mask_mse(prediction, target, torch.ones(1, 1, 2, 2)).item() == 0
