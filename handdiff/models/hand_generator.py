"""Stage 1: the multi-task hand generator (SPEC 4).

An SD 1.5 UNet whose ``conv_in`` takes 4 + 11 channels (the noisy latents and the
condition ``c_p`` resized to latent resolution), plus a mask head: four
``ConvTranspose2d`` (kernel 2, stride 2, SiLU between) on the decoder feature map at
1/16 of the image resolution (the input of the UNet's last upsampler), so that the
mask comes out at the image's resolution. The UNet stays a standard diffusers model;
both parts save and reload with ``from_pretrained``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from handdiff.models.conditioning import CONDITION_CHANNELS


def grow_conv_in(unet: UNet2DConditionModel, extra_channels: int = CONDITION_CHANNELS, init: str = "random", seed: int = 0) -> UNet2DConditionModel:
    """Give ``unet.conv_in`` ``extra_channels`` more input channels, in place.

    The pretrained weights keep the first channels; the new ones are random (PyTorch's
    conv init, as the paper) or zero (``init="zero"``: the grown UNet starts out
    computing exactly what the pretrained one did). The new channel count is recorded
    in the config, so ``from_pretrained`` rebuilds the grown layer (the precedent is
    diffusers' instruct_pix2pix example).
    """
    if init not in ("random", "zero"):
        raise ValueError(f"conv_in init must be 'random' or 'zero', got {init!r}")
    old = unet.conv_in
    grown = nn.Conv2d(old.in_channels + extra_channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        if init == "random":
            torch.manual_seed(seed)
            nn.init.kaiming_uniform_(grown.weight, a=5**0.5)  # nn.Conv2d's own default init
        else:
            grown.weight.zero_()
        grown.weight[:, : old.in_channels] = old.weight
        grown.bias.copy_(old.bias)
    unet.conv_in = grown.to(old.weight.device, old.weight.dtype)
    unet.register_to_config(in_channels=old.in_channels + extra_channels)
    return unet


def default_mask_head_source(unet: UNet2DConditionModel) -> str:
    """The module whose input is the decoder's 1/16-resolution feature map: the last upsampler."""
    last = max(i for i, block in enumerate(unet.up_blocks) if block.upsamplers is not None)
    return f"up_blocks.{last}.upsamplers.0"


class MaskHead(ModelMixin, ConfigMixin):
    """(B, C, H/16, W/16) decoder features -> (B, 1, H, W) mask."""

    @register_to_config
    def __init__(self, in_channels: int, hidden_channels: tuple[int, ...] | None = None, source: str = "up_blocks.2.upsamplers.0"):
        super().__init__()
        hidden = list(hidden_channels or [max(8, in_channels // 2**k) for k in (1, 2, 3)])
        widths = [in_channels, *hidden, 1]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.ConvTranspose2d(cin, cout, kernel_size=2, stride=2))
            if i < len(widths) - 2:
                layers.append(nn.SiLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class HandGenerator(nn.Module):
    """UNet + mask head: ``forward(noisy_latents, timesteps, text, condition) -> (noise, mask)``.

    ``condition`` (B, 11, H, W) is at image (crop) resolution; it is resized to the
    latents' with bilinear interpolation and concatenated to them.
    """

    def __init__(self, unet: UNet2DConditionModel, mask_head: MaskHead):
        super().__init__()
        self.unet, self.mask_head = unet, mask_head
        self._features: torch.Tensor | None = None
        source = unet.get_submodule(mask_head.config.source)
        source.register_forward_pre_hook(self._keep_features)

    def _keep_features(self, module, args) -> None:
        self._features = args[0]

    def forward(self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, encoder_hidden_states: torch.Tensor,
                condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        condition = F.interpolate(condition.to(noisy_latents.dtype), size=noisy_latents.shape[-2:], mode="bilinear", align_corners=False)
        noise = self.unet(torch.cat([noisy_latents, condition], dim=1), timesteps, encoder_hidden_states).sample
        mask = self.mask_head(self._features)
        self._features = None
        return noise, mask

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        self.unet.save_pretrained(directory / "unet")
        self.mask_head.save_pretrained(directory / "mask_head")
        (directory / "hand_generator.json").write_text(json.dumps({"condition_channels": CONDITION_CHANNELS,
                                                                   "unet_in_channels": self.unet.config.in_channels}, indent=1))  # fmt: skip

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs) -> HandGenerator:
        directory = Path(directory)
        return cls(UNet2DConditionModel.from_pretrained(directory / "unet", **kwargs), MaskHead.from_pretrained(directory / "mask_head", **kwargs))


def build_hand_generator(unet: UNet2DConditionModel, extra_in_channels: int = CONDITION_CHANNELS, init: str = "random",
                         mask_head_source: str | None = None, mask_head_channels: tuple[int, ...] | None = None) -> HandGenerator:  # fmt: skip
    """The stage-1 model from a pretrained SD UNet (grown in place)."""
    grow_conv_in(unet, extra_in_channels, init)
    source = mask_head_source or default_mask_head_source(unet)
    in_channels = _source_channels(unet, source)
    return HandGenerator(unet, MaskHead(in_channels, mask_head_channels, source))


def _source_channels(unet: UNet2DConditionModel, source: str) -> int:
    module = unet.get_submodule(source)
    for attr in ("channels", "in_channels"):
        if isinstance(getattr(module, attr, None), int):
            return getattr(module, attr)
    raise ValueError(f"cannot tell the channels of {source} ({type(module).__name__}); name an upsampler or a conv")


def hand_generator_loss(noise_pred: torch.Tensor, noise: torch.Tensor, mask_pred: torch.Tensor, mask: torch.Tensor,
                        mask_weight: float = 0.5) -> dict[str, torch.Tensor]:  # fmt: skip
    """``L = L_LDM + lambda * mean((M - m_pred)^2)``; returns the total and its parts."""
    ldm = F.mse_loss(noise_pred.float(), noise.float())
    mask_mse = F.mse_loss(mask_pred.float(), mask.float())
    return {"loss": ldm + mask_weight * mask_mse, "loss_ldm": ldm, "loss_mask": mask_mse}
