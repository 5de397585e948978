"""Outpainting a body around fixed hands with the stage-2 ControlNet (DDIM, classifier-free
guidance, latent blending). Used for sample grids in training and by two-stage inference.

A saved pipeline is SD 1.5's folder layout plus the grown ControlNet and what its training
set was made with::

    <dir>/vae/ text_encoder/ tokenizer/ scheduler/ unet/   the frozen SD 1.5 parts
    <dir>/controlnet/                                      the body ControlNet (4 condition channels)
    <dir>/outpaint.json                                    ``OutpaintSettings``: the canvas fill, size, framing margin
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import ControlNetModel, DDIMScheduler, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config

from handdiff.data.outpaint import DEFAULT_FILL
from handdiff.models.body_controlnet import blend_latents, body_condition, controlnet_noise, latent_mask
from handdiff.models.sampling import decode, denoise, guided_prompts
from handdiff.models.sd_parts import load_sd_parts, save_sd_parts, vae_factor


class OutpaintSettings(ConfigMixin):
    """How the outpaint set stage 2 was trained on was made (its ``settings.json``), saved with the
    pipeline: ``fill`` (the canvas background, 0-255 grey), ``size`` (px) and ``person_margin``
    (the person framing's margin). Inference builds its canvases with this ``fill``."""

    config_name = "outpaint.json"

    @register_to_config
    def __init__(self, fill: int = DEFAULT_FILL, size: int = 512, person_margin: float = 0.1):
        pass

    @classmethod
    def from_directory(cls, directory: str | Path) -> OutpaintSettings:
        """The settings saved in ``directory``; ValueError naming the file when it lacks the fill."""
        config = cls.load_config(directory) if (Path(directory) / cls.config_name).exists() else {}
        if "fill" not in config:
            raise ValueError(
                f"{Path(directory) / cls.config_name} does not record the canvas fill: this body pipeline was saved "
                "before models carried their training settings; retrain it, or write that file with the outpaint "
                "set's fill, size and margin"
            )
        return cls.from_config(config)


@dataclass
class BodySamples:
    images: torch.Tensor
    """(B, 3, H, W) float in [0, 1]."""
    latents: torch.Tensor
    """(B, 4, H/8, W/8) the final latents (scaled)."""


class BodyOutpaintPipeline:
    def __init__(
        self,
        vae,
        text_encoder,
        tokenizer,
        unet: UNet2DConditionModel,
        controlnet: ControlNetModel,
        scheduler,
        settings: OutpaintSettings | None = None,
    ):
        self.vae, self.text_encoder, self.tokenizer, self.unet, self.controlnet = vae, text_encoder, tokenizer, unet, controlnet
        self.scheduler = DDIMScheduler.from_config(scheduler.config)
        self.settings = settings or OutpaintSettings()

    @classmethod
    def from_parts(cls, sd_pipeline, controlnet: ControlNetModel, settings: OutpaintSettings | None = None) -> BodyOutpaintPipeline:
        """From a loaded ``StableDiffusionPipeline`` (its frozen parts, UNet included), a body
        ControlNet and the outpaint set's settings."""
        return cls(
            sd_pipeline.vae, sd_pipeline.text_encoder, sd_pipeline.tokenizer, sd_pipeline.unet, controlnet, sd_pipeline.scheduler, settings
        )

    @classmethod
    def from_pretrained(cls, directory: str | Path, torch_dtype: torch.dtype | None = None) -> BodyOutpaintPipeline:
        directory = Path(directory)
        kwargs = {"torch_dtype": torch_dtype} if torch_dtype else {}
        settings = OutpaintSettings.from_directory(directory)
        parts = load_sd_parts(directory, torch_dtype)
        return cls(
            unet=UNet2DConditionModel.from_pretrained(directory / "unet", **kwargs),
            controlnet=ControlNetModel.from_pretrained(directory / "controlnet", **kwargs),
            settings=settings,
            **parts,
        )

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        save_sd_parts(directory, self.vae, self.text_encoder, self.tokenizer, self.scheduler)
        self.unet.save_pretrained(directory / "unet")
        self.controlnet.save_pretrained(directory / "controlnet")
        self.settings.save_config(directory)

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> BodyOutpaintPipeline:
        for module in (self.vae, self.text_encoder, self.unet, self.controlnet):
            module.to(device, dtype)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.controlnet.parameters()).device

    def encode_canvas(self, canvas: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) canvas in [0, 1] -> (B, 4, H/8, W/8) scaled latents (the distribution's mode)."""
        pixels = canvas.to(self.device, self.vae.dtype) * 2 - 1
        return self.vae.encode(pixels).latent_dist.mode() * self.vae.config.scaling_factor

    @torch.no_grad()
    def __call__(
        self,
        prompts: list[str],
        skeleton: torch.Tensor,
        mask: torch.Tensor,
        canvas: torch.Tensor | None = None,
        canvas_latents: torch.Tensor | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 7.5,
        generator: torch.Generator | None = None,
        blend_masks: list[torch.Tensor] | None = None,
        unmasked_last_steps: int = 0,
        noised_canvas: bool = False,
        latents: torch.Tensor | None = None,
    ) -> BodySamples:
        """Bodies for ``prompts`` around the hands of ``canvas`` (or its ``canvas_latents``).

        Args:
            skeleton: (B, 3, H, W) in [0, 1], the OpenPose rendering at output size.
            mask: (B, 1, H, W) in {0, 1}, the exact hand mask: the ControlNet always sees it.
            blend_masks: per masked denoising step (all but the ``unmasked_last_steps``), the
                (B, 1, H/8, W/8) latent mask to blend with (e.g. sequential mask expansion);
                default: ``mask`` at latent size at every masked step.
            unmasked_last_steps: the last steps run without blending (the paper: 2 at inference).
            noised_canvas: blend the canvas noised to each step instead of the clean canvas.
            latents: the initial noise (B, 4, H/8, W/8); default: drawn from ``generator``.
        """
        device, dtype = self.device, next(self.controlnet.parameters()).dtype
        batch, _, height, width = skeleton.shape
        factor = vae_factor(self.vae)
        if canvas_latents is None:
            canvas_latents = self.encode_canvas(canvas)
        canvas_latents = canvas_latents.to(device, dtype)
        guided = guidance_scale > 1.0
        condition = body_condition(skeleton, mask).to(device, dtype)
        condition = torch.cat([condition, condition]) if guided else condition
        text = guided_prompts(self.tokenizer, self.text_encoder, prompts, guided, device, dtype)
        masked_steps = max(0, num_inference_steps - unmasked_last_steps)
        if blend_masks is None:
            blend_masks = [latent_mask(mask, (height // factor, width // factor)).to(device)] * masked_steps
        if len(blend_masks) != masked_steps:
            raise ValueError(f"blend_masks has {len(blend_masks)} masks for {masked_steps} masked denoising steps")
        shape = (batch, 4, height // factor, width // factor)
        if latents is None:
            latents = torch.randn(shape, generator=generator, device="cpu")
        canvas_noise = torch.randn(shape, generator=generator, device="cpu").to(device, dtype) if noised_canvas else None

        def blend(i: int, t: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
            if i >= masked_steps:
                return latents
            target = self.scheduler.add_noise(canvas_latents, canvas_noise, t.reshape(1)) if noised_canvas else canvas_latents
            return blend_latents(latents, target, blend_masks[i].to(device))

        def predict(model_input: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return controlnet_noise(self.unet, self.controlnet, model_input, t.expand(model_input.shape[0]), text, condition)

        latents = denoise(self.scheduler, latents.to(device, dtype), predict, num_inference_steps, guidance_scale, before_step=blend)
        return BodySamples(decode(self.vae, latents), latents)
