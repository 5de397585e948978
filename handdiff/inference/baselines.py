"""The benchmark's diffusers baselines behind the generator interface (SPEC 7 Table I): SD 1.5
from text alone, the OpenPose ControlNet and the OpenPose T2I-Adapter, each given the
condition's caption and, for the pose-conditioned ones, its skeleton drawn as OpenPose does
(``handdiff.data.skeleton``). Every image's initial noise comes from its own seed, so an
image depends only on its condition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from handdiff.data.skeleton import draw_skeleton
from handdiff.inference.generators import Generated, Generator
from handdiff.models.sd_parts import vae_factor


class _DiffusersBaseline(Generator):
    """A diffusers text-to-image pipeline (built by ``_pipeline``), batched per output size."""

    def __init__(self, base: str, steps: int = 50, guidance: float = 7.5, device: str = "cpu", dtype: str = "float32", **models: str):
        from diffusers import DDIMScheduler

        from handdiff.models.loading import load_sd_pipeline

        sd = load_sd_pipeline(base, torch_dtype=getattr(torch, dtype))
        self.pipe = self._pipeline(sd, **models).to(device)
        self.pipe.scheduler = DDIMScheduler.from_config(self.pipe.scheduler.config)  # the paper's sampler, as for ours
        self.pipe.set_progress_bar_config(disable=True)
        self.settings = {"base": base, **models, "steps": steps, "guidance": guidance, "dtype": dtype}
        self.steps, self.guidance = steps, guidance

    def _pipeline(self, sd, **models):
        return sd

    def _condition(self, conditions: list[dict], size: int) -> dict[str, Any]:
        """Extra pipeline arguments for a batch (e.g. the skeleton images)."""
        return {}

    def generate(self, conditions: list[dict]) -> list[Generated]:
        import time

        out: dict[int, Generated] = {}
        for size in sorted({int(c["size"]) for c in conditions}):
            group = [i for i, c in enumerate(conditions) if int(c["size"]) == size]
            batch = [conditions[i] for i in group]
            factor = vae_factor(self.pipe.vae)
            noise = torch.cat([torch.randn((1, 4, size // factor, size // factor), generator=torch.Generator().manual_seed(int(c["seed"])))
                               for c in batch])  # fmt: skip
            start = time.perf_counter()
            images = self.pipe([c["caption"] for c in batch], height=size, width=size, num_inference_steps=self.steps,
                               guidance_scale=self.guidance, latents=noise.to(self.pipe.device, self.pipe.unet.dtype), output_type="np",
                               **self._condition(batch, size)).images  # fmt: skip
            seconds = (time.perf_counter() - start) / len(batch)
            for i, image in zip(group, images, strict=True):
                out[i] = Generated((np.clip(image, 0, 1) * 255).round().astype(np.uint8), {"generate": seconds})
        return [out[i] for i in range(len(conditions))]

    def describe(self) -> dict[str, Any]:
        return dict(self.settings)


def skeletons(conditions: list[dict], size: int) -> list[Image.Image]:
    return [Image.fromarray(draw_skeleton(np.asarray(c["keypoints"], np.float32).reshape(133, 3), size)) for c in conditions]


class SD15Generator(_DiffusersBaseline):
    """SD 1.5 from the caption alone (``StableDiffusionPipeline``)."""

    method = "sd15"


class ControlNetOpenPoseGenerator(_DiffusersBaseline):
    """The OpenPose ControlNet (``StableDiffusionControlNetPipeline``) on the skeleton image."""

    method = "controlnet-openpose"

    def __init__(self, base: str, controlnet: str, **options):
        super().__init__(base, controlnet=controlnet, **options)

    def _pipeline(self, sd, controlnet: str):
        from diffusers import StableDiffusionControlNetPipeline

        from handdiff.models.loading import load_controlnet

        return StableDiffusionControlNetPipeline(**sd.components, controlnet=load_controlnet(controlnet, torch_dtype=sd.unet.dtype))

    def _condition(self, conditions: list[dict], size: int) -> dict[str, Any]:
        return {"image": skeletons(conditions, size)}


class T2IAdapterOpenPoseGenerator(_DiffusersBaseline):
    """The OpenPose T2I-Adapter (``StableDiffusionAdapterPipeline``) on the skeleton image."""

    method = "t2i-adapter-openpose"

    def __init__(self, base: str, adapter: str, **options):
        super().__init__(base, adapter=adapter, **options)

    def _pipeline(self, sd, adapter: str):
        from diffusers import StableDiffusionAdapterPipeline

        from handdiff.models.loading import load_t2i_adapter

        parts = {k: v for k, v in sd.components.items() if k != "image_encoder"}
        return StableDiffusionAdapterPipeline(**parts, adapter=load_t2i_adapter(adapter, torch_dtype=sd.unet.dtype))

    def _condition(self, conditions: list[dict], size: int) -> dict[str, Any]:
        return {"image": skeletons(conditions, size)}


class HumanSDGenerator(Generator):
    """HumanSD's design on diffusers: an SD 2.1-base-shaped UNet whose ``conv_in`` takes 8
    channels, the noisy latents concatenated with the VAE latents of the skeleton image
    (``conditioning_key: hybrid``), sampled with DDIM + CFG (the skeleton latents in both halves).

    ``humansd`` is a diffusers folder (SD layout, 8-channel UNet). The released
    ``humansd-v1.ckpt`` is a Lightning checkpoint: convert it once, where it is trusted, to
    safetensors with ``UNet2DConditionModel.from_single_file(ckpt, config=<SD 2.1-base folder
    with in_channels 8>, subfolder="unet")`` and ``save_pretrained``; loading it here never
    unpickles.
    """

    method = "humansd"

    def __init__(self, humansd: str, steps: int = 50, guidance: float = 7.5, device: str = "cpu", dtype: str = "float32", **_unused):
        from diffusers import DDIMScheduler

        from handdiff.models.loading import load_sd_pipeline

        self.sd = load_sd_pipeline(humansd, torch_dtype=getattr(torch, dtype)).to(device)
        if self.sd.unet.config.in_channels != 8:
            raise ValueError(f"{humansd}: a HumanSD UNet takes 8 input channels, this one {self.sd.unet.config.in_channels}")
        self.scheduler = DDIMScheduler.from_config(self.sd.scheduler.config)
        self.settings = {"humansd": humansd, "steps": steps, "guidance": guidance, "dtype": dtype}
        self.steps, self.guidance = steps, guidance

    @torch.no_grad()
    def generate(self, conditions: list[dict]) -> list[Generated]:
        import time

        from handdiff.models.sd_parts import encode_prompts

        out: dict[int, Generated] = {}
        sd, device, dtype = self.sd, self.sd.unet.device, self.sd.unet.dtype
        for size in sorted({int(c["size"]) for c in conditions}):
            group = [i for i, c in enumerate(conditions) if int(c["size"]) == size]
            batch = [conditions[i] for i in group]
            start = time.perf_counter()
            pixels = torch.as_tensor(np.stack([np.asarray(s) for s in skeletons(batch, size)])).permute(0, 3, 1, 2).to(device, dtype) / 127.5 - 1
            pose = sd.vae.encode(pixels).latent_dist.mode() * sd.vae.config.scaling_factor
            text = encode_prompts(sd.tokenizer, sd.text_encoder, [c["caption"] for c in batch], device).to(dtype)
            guided = self.guidance > 1.0
            if guided:
                text = torch.cat([encode_prompts(sd.tokenizer, sd.text_encoder, [""] * len(batch), device).to(dtype), text])
            factor = vae_factor(sd.vae)
            latents = torch.cat([torch.randn((1, 4, size // factor, size // factor), generator=torch.Generator().manual_seed(int(c["seed"])))
                                 for c in batch]).to(device, dtype) * self.scheduler.init_noise_sigma  # fmt: skip
            self.scheduler.set_timesteps(self.steps, device=device)
            for t in self.scheduler.timesteps:
                x = torch.cat([latents, pose], dim=1)
                x = self.scheduler.scale_model_input(torch.cat([x, x]) if guided else x, t)
                noise = sd.unet(x, t, text).sample
                if guided:
                    uncond, cond = noise.chunk(2)
                    noise = uncond + self.guidance * (cond - uncond)
                latents = self.scheduler.step(noise, t, latents).prev_sample
            images = ((sd.vae.decode(latents / sd.vae.config.scaling_factor).sample.float() + 1) / 2).clamp(0, 1)
            seconds = (time.perf_counter() - start) / len(batch)
            for i, image in zip(group, images, strict=True):
                out[i] = Generated((image.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8), {"generate": seconds})
        return [out[i] for i in range(len(conditions))]

    def describe(self) -> dict[str, Any]:
        return dict(self.settings)


def hand_depth(keypoints: np.ndarray, size: int) -> Image.Image:
    """A depth-like image of the target hands drawn from their 2D keypoints (our stand-in for
    HandRefiner's hand-mesh depth, a stated deviation): each hand's bones as thick bright strokes
    and its palm filled, on black; nearer is brighter, and without 3D all hand pixels are "near"."""
    import cv2

    from handdiff.data import keypoints as kp
    from handdiff.data.skeleton import HAND_BONES

    canvas = np.zeros((size, size), np.uint8)
    width = max(2, size // 64)
    for side in kp.SIDES:
        hand = keypoints[kp.hand_slice(side)]
        here = hand[:, 2] > 0
        palm = [0, 1, 5, 9, 13, 17]
        if here[palm].all():
            cv2.fillConvexPoly(canvas, cv2.convexHull(hand[palm, :2].astype(np.int32)), 200)
        for a, b in HAND_BONES:
            if here[a] and here[b]:
                cv2.line(canvas, tuple(int(v) for v in hand[a, :2]), tuple(int(v) for v in hand[b, :2]), 255, width)
    return Image.fromarray(np.repeat(canvas[..., None], 3, axis=2))


def hand_regions(keypoints: np.ndarray, size: int, margin: float = 0.25) -> Image.Image:
    """The inpainting mask: each target hand's box grown by ``margin`` of its longer side, white on black."""
    from handdiff.annotation.masks import expand_box
    from handdiff.data import keypoints as kp

    mask = np.zeros((size, size), np.uint8)
    for side in kp.SIDES:
        hand = keypoints[kp.hand_slice(side)]
        box = kp.hand_box(hand[:, :2], hand[:, 2])
        if box is not None:
            x0, y0, x1, y1 = np.round(expand_box(box, margin, size, size)).astype(int)
            mask[y0:y1, x0:x1] = 255
    return Image.fromarray(mask)


class HandRefinerGenerator(_DiffusersBaseline):
    """HandRefiner's design: SD 1.5 draws the image, then every target hand region is inpainted
    again by a depth-conditioned inpainting ControlNet (``control_sd15_inpaint_depth_hand``,
    ``StableDiffusionControlNetInpaintPipeline``). HandRefiner takes depth from a hand-mesh
    model fitted to the generated hands; the shipped default draws it from the target hand
    keypoints (``hand_depth``), a stated deviation."""

    method = "handrefiner"

    def __init__(self, base: str, handrefiner: str, strength: float = 0.55, **options):
        super().__init__(base, handrefiner=handrefiner, **options)
        from diffusers import StableDiffusionControlNetInpaintPipeline

        from handdiff.models.loading import load_controlnet

        self.inpaint = StableDiffusionControlNetInpaintPipeline(
            **{k: v for k, v in self.pipe.components.items() if k != "image_encoder"},
            controlnet=load_controlnet(handrefiner, torch_dtype=self.pipe.unet.dtype),
        ).to(self.pipe.device)  # fmt: skip
        self.inpaint.set_progress_bar_config(disable=True)
        self.strength = strength
        self.settings["strength"] = strength

    def _pipeline(self, sd, handrefiner: str):
        return sd

    def generate(self, conditions: list[dict]) -> list[Generated]:
        import time

        drawn = super().generate(conditions)
        start = time.perf_counter()
        for c, g in zip(conditions, drawn, strict=True):
            size, keypoints = int(c["size"]), np.asarray(c["keypoints"], np.float32).reshape(133, 3)
            mask = hand_regions(keypoints, size)
            if not np.asarray(mask).any():
                continue  # no visible hand: nothing to refine
            refined = self.inpaint(c["caption"], image=Image.fromarray(g.image), mask_image=mask, control_image=hand_depth(keypoints, size),
                                   height=size, width=size, num_inference_steps=self.steps, guidance_scale=self.guidance, strength=self.strength,
                                   generator=torch.Generator().manual_seed(int(c["seed"])), output_type="np").images[0]  # fmt: skip
            # outside the hand regions the SD image stays as drawn (the inpainting's VAE round trip would blur it)
            inside = np.asarray(mask)[..., None] > 0
            g.image = np.where(inside, (np.clip(refined, 0, 1) * 255).round().astype(np.uint8), g.image)
        share = (time.perf_counter() - start) / len(conditions)
        for g in drawn:
            g.seconds["refine"] = share
        return drawn
