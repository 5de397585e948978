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
