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

from handdiff import storage
from handdiff.models.conditioning import CONDITION_CHANNELS


def grow_conv_in(
    unet: UNet2DConditionModel, extra_channels: int = CONDITION_CHANNELS, init: str = "random", generator: torch.Generator | None = None
) -> UNet2DConditionModel:
    """Give ``unet.conv_in`` ``extra_channels`` more input channels, in place.

    The pretrained weights keep the first channels; the new ones are random (PyTorch's
    conv init, as the paper, drawn from ``generator``; torch's global RNG is left as it was) or
    zero (``init="zero"``: the grown UNet starts out computing exactly what the pretrained one
    did). The new channel count is recorded in the config, so ``from_pretrained`` rebuilds the
    grown layer (the precedent is diffusers' instruct_pix2pix example).
    """
    if init not in ("random", "zero"):
        raise ValueError(f"conv_in init must be 'random' or 'zero', got {init!r}")
    old = unet.conv_in
    with torch.random.fork_rng(devices=[]):  # the layer's own init draws from the global RNG; ours replaces it
        grown = nn.Conv2d(old.in_channels + extra_channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        if init == "random":
            nn.init.kaiming_uniform_(grown.weight, a=5**0.5, generator=generator)  # nn.Conv2d's own default init
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


CROP_SETTINGS = ("crop_size", "crop_margin", "heatmap_sigma", "min_hand_points")
"""What training chose about the crops and conditions, saved in the model's config: inference
plans, crops and draws its conditions with these, never with defaults of its own."""


class HandGenerator(ModelMixin, ConfigMixin):
    """UNet + mask head: ``forward(noisy_latents, timesteps, text, condition) -> (noise, mask)``.

    ``condition`` (B, 11, H, W) is at image (crop) resolution; it is resized to the
    latents' with bilinear interpolation and concatenated to them.

    The config (``hand_generator.json``) holds what the model was trained on and inference must
    reproduce: ``crop_size`` (px), ``crop_margin`` (the crop rule's margin), ``heatmap_sigma``
    (px at crop resolution) and ``min_hand_points`` (a hand with fewer present points gets no
    crop), plus ``condition_channels``. The UNet and the mask head are standard diffusers models
    in their own folders (``unet/``, ``mask_head/``), saved and loaded as diffusers'
    ``MultiControlNetModel`` does its ControlNets (``diffusers/models/controlnets/multicontrolnet.py``,
    ``save_pretrained`` / ``from_pretrained``).
    """

    config_name = "hand_generator.json"
    ignore_for_config = ["unet", "mask_head"]

    @register_to_config
    def __init__(
        self,
        *,
        unet: UNet2DConditionModel,
        mask_head: MaskHead,
        crop_size: int = 512,
        crop_margin: float = 0.25,
        heatmap_sigma: float | None = None,
        min_hand_points: int = 5,
        condition_channels: int = CONDITION_CHANNELS,
    ):
        super().__init__()
        if heatmap_sigma is None:  # the training default, recorded as the number it is
            self.register_to_config(heatmap_sigma=crop_size / 64)
        self.unet, self.mask_head = unet, mask_head
        self._features: torch.Tensor | None = None
        source = unet.get_submodule(mask_head.config.source)
        source.register_forward_pre_hook(self._keep_features)

    def _keep_features(self, module, args) -> None:
        self._features = args[0]

    def forward(
        self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, encoder_hidden_states: torch.Tensor, condition: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        condition = F.interpolate(condition.to(noisy_latents.dtype), size=noisy_latents.shape[-2:], mode="bilinear", align_corners=False)
        noise = self.unet(torch.cat([noisy_latents, condition], dim=1), timesteps, encoder_hidden_states).sample
        mask = self.mask_head(self._features)
        self._features = None
        return noise, mask

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> None:
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.save_config(directory)
        self.unet.save_pretrained(directory / "unet", **kwargs)
        self.mask_head.save_pretrained(directory / "mask_head", **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs) -> HandGenerator:
        """``kwargs`` (e.g. ``torch_dtype``) go to both parts' ``from_pretrained``. A folder whose
        ``hand_generator.json`` lacks the crop settings (saved before models carried them) is
        refused: inference would otherwise guess them."""
        directory = Path(pretrained_model_name_or_path)
        config = cls.load_config(directory)
        init = _crop_settings_of(config, str(directory / cls.config_name))
        if "condition_channels" in config:
            init["condition_channels"] = config["condition_channels"]
        return cls(
            unet=UNet2DConditionModel.from_pretrained(directory / "unet", **kwargs),
            mask_head=MaskHead.from_pretrained(directory / "mask_head", **kwargs),
            **init,
        )

    def crop_settings(self) -> dict:
        """``{crop_size, crop_margin, heatmap_sigma, min_hand_points}`` as trained."""
        return {key: self.config[key] for key in CROP_SETTINGS}


def read_crop_settings(location: str) -> dict | None:
    """The crop settings a saved hand generator (or hand pipeline folder) records, read from its
    ``hand_generator.json`` alone, local or on S3; None for a hub id. FileNotFoundError /
    ValueError naming the file when it is missing or lacks them."""
    if not (storage.is_local(location) or storage.is_s3(location)):
        return None
    uri = storage.join(location, HandGenerator.config_name)
    if not storage.exists(uri):
        raise FileNotFoundError(f"{uri} not found: not a hand generator saved by train-hand")
    return _crop_settings_of(json.loads(storage.read_text(uri)), uri)


def _crop_settings_of(config: dict, where: str) -> dict:
    missing = [key for key in CROP_SETTINGS if config.get(key) is None]
    if missing:
        raise ValueError(
            f"{where} does not record {', '.join(missing)}: this hand generator was saved before models carried their "
            "training settings; retrain it, or add the values its crop set and training used to that file"
        )
    return {key: config[key] for key in CROP_SETTINGS}


def build_hand_generator(
    unet: UNet2DConditionModel,
    extra_in_channels: int = CONDITION_CHANNELS,
    init: str = "random",
    mask_head_source: str | None = None,
    mask_head_channels: tuple[int, ...] | None = None,
    generator: torch.Generator | None = None,
    **crop_settings,
) -> HandGenerator:
    """The stage-1 model from a pretrained SD UNet (grown in place). ``crop_settings``: the crop
    set's ``crop_size``, ``crop_margin``, ``min_hand_points`` and the ``heatmap_sigma``
    training uses, recorded in the model's config. ``generator``: where the new weights (the grown
    ``conv_in`` channels, the mask head) come from (training passes ``train.seed``'s; seed 0 when
    None); torch's global RNG is left as it was."""
    unknown = set(crop_settings) - set(CROP_SETTINGS)
    if unknown:
        raise TypeError(f"unknown crop settings {sorted(unknown)}; known: {', '.join(CROP_SETTINGS)}")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    grow_conv_in(unet, extra_in_channels, init, generator)
    source = mask_head_source or default_mask_head_source(unet)
    with torch.random.fork_rng(devices=[]):  # MaskHead's layers take PyTorch's default init from the global RNG
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator, device="cpu")))
        head = MaskHead(_source_channels(unet, source), mask_head_channels, source)
    return HandGenerator(unet=unet, mask_head=head, condition_channels=extra_in_channels, **crop_settings)


def _source_channels(unet: UNet2DConditionModel, source: str) -> int:
    module = unet.get_submodule(source)
    for attr in ("channels", "in_channels"):
        if isinstance(getattr(module, attr, None), int):
            return getattr(module, attr)
    raise ValueError(f"cannot tell the channels of {source} ({type(module).__name__}); name an upsampler or a conv")


def hand_generator_loss(
    noise_pred: torch.Tensor, noise: torch.Tensor, mask_pred: torch.Tensor, mask: torch.Tensor, mask_weight: float = 0.5
) -> dict[str, torch.Tensor]:
    """``L = L_LDM + lambda * mean((M - m_pred)^2)``; returns the total and its parts."""
    ldm = F.mse_loss(noise_pred.float(), noise.float())
    mask_mse = F.mse_loss(mask_pred.float(), mask.float())
    return {"loss": ldm + mask_weight * mask_mse, "loss_ldm": ldm, "loss_mask": mask_mse}
