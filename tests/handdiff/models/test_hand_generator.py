"""Stage-1 model surgery, mask head, save/reload and loss."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import UNet2DConditionModel
from torch import nn

from handdiff.assets.tiny_zoo import model_locations
from handdiff.models.hand_generator import (
    HandGenerator,
    MaskHead,
    build_hand_generator,
    default_mask_head_source,
    grow_conv_in,
    hand_generator_loss,
)


def tiny_unet(zoo: str) -> UNet2DConditionModel:
    return UNet2DConditionModel.from_pretrained(model_locations(zoo)["sd15"], subfolder="unet")


def inputs(batch: int = 2, latent: int = 8, text_dim: int = 32):
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(batch, 4, latent, latent, generator=g),
        torch.tensor([10, 700][:batch]),
        torch.randn(batch, 77, text_dim, generator=g),
        torch.rand(batch, 11, latent * 8, latent * 8, generator=g),
    )


def test_random_growth_keeps_the_pretrained_channels_and_records_the_count(tiny_zoo):
    unet = tiny_unet(tiny_zoo)
    before = unet.conv_in.weight.detach().clone()
    grow_conv_in(unet, 11, "random")
    assert unet.conv_in.in_channels == 15 and unet.config.in_channels == 15
    assert torch.equal(unet.conv_in.weight[:, :4], before)
    assert unet.conv_in.weight[:, 4:].abs().sum() > 0  # the new channels are random, not zero
    with pytest.raises(ValueError, match="'random' or 'zero'"):
        grow_conv_in(tiny_unet(tiny_zoo), 11, "ones")


def test_zero_growth_computes_what_the_pretrained_unet_did(tiny_zoo):
    reference = tiny_unet(tiny_zoo)
    model = build_hand_generator(tiny_unet(tiny_zoo), init="zero")
    latents, t, text, condition = inputs()
    noise, mask = model(latents, t, text, condition)
    assert torch.allclose(noise, reference(latents, t, text).sample, atol=1e-5)
    assert mask.shape == (2, 1, 64, 64)  # the image's resolution: latents x 8


def test_new_weights_come_from_the_generator_and_leave_the_global_rng_alone(tiny_zoo):
    """train.seed reaches the grown conv_in channels and the mask head, and building the model
    does not reseed the training's own random stream."""
    unets = [tiny_unet(tiny_zoo) for _ in range(3)]
    state = torch.get_rng_state()
    a, b, c = (build_hand_generator(unet, generator=torch.Generator().manual_seed(seed)) for unet, seed in zip(unets, (7, 7, 8)))
    assert torch.equal(torch.get_rng_state(), state)

    def new_weights(model):
        return torch.cat([model.unet.conv_in.weight[:, 4:].flatten(), *(p.flatten() for p in model.mask_head.parameters())])

    assert torch.equal(new_weights(a), new_weights(b)) and not torch.equal(new_weights(a), new_weights(c))
    assert torch.equal(a.unet.conv_in.weight[:, :4], tiny_unet(tiny_zoo).conv_in.weight)  # the pretrained channels stay


def test_mask_head_is_four_stride_2_transposed_convs_with_silu_between():
    head = MaskHead(640)
    convs = [m for m in head.layers if isinstance(m, nn.ConvTranspose2d)]
    assert len(convs) == 4 and all(c.kernel_size == (2, 2) and c.stride == (2, 2) for c in convs)
    assert [type(m) for m in head.layers] == [nn.ConvTranspose2d, nn.SiLU] * 3 + [nn.ConvTranspose2d]
    assert convs[0].in_channels == 640 and convs[-1].out_channels == 1
    assert head(torch.zeros(1, 640, 32, 32)).shape == (1, 1, 512, 512)


def test_sd15_shaped_unet_feeds_the_head_its_1_16_feature_map():
    """SD 1.5's real architecture (random weights on the meta device: no memory)."""
    with torch.device("meta"):
        unet = UNet2DConditionModel(
            sample_size=64,
            cross_attention_dim=768,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        )
        assert default_mask_head_source(unet) == "up_blocks.2.upsamplers.0"
        model = build_hand_generator(unet)
        noise, mask = model(torch.zeros(1, 4, 64, 64), torch.tensor([500]), torch.zeros(1, 77, 768), torch.zeros(1, 11, 512, 512))
    assert model.mask_head.config.in_channels == 640 and unet.config.in_channels == 15
    assert noise.shape == (1, 4, 64, 64) and mask.shape == (1, 1, 512, 512)


def test_save_and_reload_with_from_pretrained(tiny_zoo, tmp_path):
    model = build_hand_generator(tiny_unet(tiny_zoo), crop_size=96, crop_margin=0.4, heatmap_sigma=2.5, min_hand_points=7)
    model.save_pretrained(tmp_path)
    again = HandGenerator.from_pretrained(tmp_path)
    assert again.unet.config.in_channels == 15 and again.mask_head.config.source == model.mask_head.config.source
    # what training chose travels with the model
    assert again.crop_settings() == {"crop_size": 96, "crop_margin": 0.4, "heatmap_sigma": 2.5, "min_hand_points": 7}
    assert json.loads((tmp_path / "hand_generator.json").read_text())["crop_margin"] == 0.4
    assert UNet2DConditionModel.from_pretrained(tmp_path / "unet").conv_in.in_channels == 15  # a standard diffusers UNet
    batch = inputs()
    for a, b in zip(model(*batch), again(*batch), strict=True):
        assert torch.allclose(a, b)


def test_loss_is_ldm_plus_weighted_mask_mse():
    noise, pred = torch.zeros(2, 4, 8, 8), torch.full((2, 4, 8, 8), 2.0)  # MSE 4
    mask, mask_pred = torch.ones(2, 1, 64, 64), torch.zeros(2, 1, 64, 64)  # MSE 1
    out = hand_generator_loss(pred, noise, mask_pred, mask, mask_weight=0.5)
    assert out["loss_ldm"].item() == 4.0 and out["loss_mask"].item() == 1.0 and out["loss"].item() == 4.5


def test_gradients_reach_the_new_channels_and_the_head(tiny_zoo):
    model = build_hand_generator(tiny_unet(tiny_zoo))
    noise, mask = model(*inputs())
    (noise.square().mean() + mask.square().mean()).backward()
    assert model.unet.conv_in.weight.grad[:, 4:].abs().sum() > 0
    assert all(p.grad is not None for p in model.mask_head.parameters())


def test_an_unset_sigma_is_recorded_as_the_number_training_used(tiny_zoo):
    assert build_hand_generator(tiny_unet(tiny_zoo), crop_size=128).config.heatmap_sigma == 2.0  # 128 / 64


def test_a_saved_generator_without_its_crop_settings_is_refused(tiny_zoo, tmp_path):
    build_hand_generator(tiny_unet(tiny_zoo)).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "hand_generator.json").read_text())
    del config["crop_margin"], config["heatmap_sigma"]
    (tmp_path / "hand_generator.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not record crop_margin, heatmap_sigma"):
        HandGenerator.from_pretrained(tmp_path)
