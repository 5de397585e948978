"""The benchmark's baselines behind the generator interface (SPEC 7 Table I), each driven as its
authors' code drives it: the input it was trained on, its sampler settings, its model variant.
What each receives, and the file of its authors' code that says so:

| method | receives | authors' code |
|---|---|---|
| ``sd15`` | the caption; DDIM, guidance 7.5 | ``CompVis/stable-diffusion`` ``scripts/txt2img.py`` (``--scale 7.5``) |
| ``controlnet-openpose`` | ControlNet 1.1's body + hand drawing (``draw_skeleton``; ``pose: body`` draws 1.0's body-only one); guidance 9 | ``lllyasviel/ControlNet-v1-1-nightly`` ``gradio_openpose.py`` (hand and face on, scale 9.0); 1.0: ``lllyasviel/ControlNet`` ``gradio_pose2image.py`` (hand off) |
| ``t2i-adapter-openpose`` | the body alone as pytorch-openpose draws it (``draw_openpose_body``); guidance 7.5, weight 1 | ``TencentARC/T2I-Adapter`` ``ldm/modules/extra_condition/openpose/{api,util}.py``, ``ldm/inference_base.py`` |
| ``humansd`` | HumanSD's own COCO-17 drawing (``draw_humansd_pose``) as latents beside the noise; guidance 10 | ``IDEA-Research/HumanSD`` ``scripts/pose2img.py`` (``draw_humansd_skeleton``, ``--scale 10.0``) |
| ``handrefiner`` | SD's image, the hands Mediapipe finds in it, one padded rectangle each, a depth image; SD 1.5's 9-channel inpainting UNet, control scale 0.55, 50 DDIM steps at guidance 9 from pure noise, the image's noised latents put back outside the mask before every step | ``wenquanlu/HandRefiner`` ``handrefiner.py``, ``cldm/ddim_hacked.py``, ``preprocessor/meshgraphormer.py`` |

Every method samples with DDIM (eta 0), every image's initial noise comes from its own seed
(an image depends only on its condition), and every method gets the caption alone with an
empty unconditional prompt (our choice: the authors' demo scripts add quality words and
negative prompts, which would make CLIPSIM and the others measure prompt engineering).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from handdiff import storage
from handdiff.data import keypoints as kp
from handdiff.data.skeleton import HUMANSD_THRESHOLD, draw_humansd_pose, draw_openpose_body, draw_skeleton
from handdiff.inference.generators import Generated, Generator
from handdiff.models.sampling import decode, denoise, guided_prompts, seed_generators, seeded_noise
from handdiff.models.sd_parts import vae_factor


def _initial_noise(conditions: list[dict], size: int, vae) -> torch.Tensor:
    """(B, 4, size/f, size/f): each condition's initial noise from its own seed."""
    factor = vae_factor(vae)
    return seeded_noise(seed_generators([c["seed"] for c in conditions]), (4, size // factor, size // factor))


def _keypoints(condition: dict) -> np.ndarray:
    return np.asarray(condition["keypoints"], np.float32).reshape(kp.NUM_KEYPOINTS, 3)


def _uint8(images: np.ndarray) -> np.ndarray:
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


class _DiffusersBaseline(Generator):
    """A diffusers text-to-image pipeline (built by ``_pipeline``), batched per output size.
    ``guidance`` None: the method's authors' own (``authors_guidance``)."""

    authors_guidance: float = 7.5

    def __init__(
        self, base: str, steps: int = 50, guidance: float | None = None, device: str = "cpu", dtype: str = "float32", **models: str
    ):
        from diffusers import DDIMScheduler

        from handdiff.models.loading import load_sd_pipeline

        sd = load_sd_pipeline(base, torch_dtype=getattr(torch, dtype))
        self.pipe = self._pipeline(sd, **models).to(device)
        self.pipe.scheduler = DDIMScheduler.from_config(self.pipe.scheduler.config)  # the paper's sampler, as for ours
        self.pipe.set_progress_bar_config(disable=True)
        self.steps, self.guidance = steps, self.authors_guidance if guidance is None else guidance
        self.settings = {"base": base, **models, "steps": steps, "guidance": self.guidance, "dtype": dtype}

    def _pipeline(self, sd, **models):
        return sd

    def _condition(self, conditions: list[dict], size: int) -> dict[str, Any]:
        """Extra pipeline arguments for a batch (e.g. the skeleton images)."""
        return {}

    def generate_batch(self, conditions: list[dict], size: int) -> list[Generated]:
        noise = _initial_noise(conditions, size, self.pipe.vae)
        start = time.perf_counter()
        images = self.pipe(
            [c["caption"] for c in conditions],
            height=size,
            width=size,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            latents=noise.to(self.pipe.device, self.pipe.unet.dtype),
            output_type="np",
            **self._condition(conditions, size),
        ).images
        seconds = (time.perf_counter() - start) / len(conditions)
        return [Generated(_uint8(image), {"generate": seconds}) for image in images]

    def describe(self) -> dict[str, Any]:
        return dict(self.settings)


def pose_images(conditions: list[dict], size: int, draw: Callable[[np.ndarray, int], np.ndarray]) -> list[Image.Image]:
    """Each condition's keypoints drawn by ``draw`` at ``size``."""
    return [Image.fromarray(draw(_keypoints(c), size)) for c in conditions]


class SD15Generator(_DiffusersBaseline):
    """SD 1.5 from the caption alone (``StableDiffusionPipeline``); guidance 7.5 as
    ``CompVis/stable-diffusion``'s ``scripts/txt2img.py``."""

    method = "sd15"


class ControlNetOpenPoseGenerator(_DiffusersBaseline):
    """The OpenPose ControlNet (``StableDiffusionControlNetPipeline``) on a skeleton drawn as its
    version's annotator drew its training data: ``pose="body+hands"`` for ControlNet 1.1's
    ``control_v11p_sd15_openpose`` (trained on body, hand and face combinations;
    ``ControlNet-v1-1-nightly/gradio_openpose.py`` draws hands and face by default), ``"body"``
    for 1.0's ``sd-controlnet-openpose`` (``ControlNet/gradio_pose2image.py`` calls its annotator
    with the hand option off). Guidance 9, both versions' demo default."""

    method = "controlnet-openpose"
    authors_guidance = 9.0

    def __init__(self, base: str, controlnet: str, pose: Literal["body+hands", "body"] = "body+hands", **options):
        super().__init__(base, controlnet=controlnet, **options)
        self.pose = pose
        self.settings["pose"] = pose

    def _pipeline(self, sd, controlnet: str):
        from diffusers import StableDiffusionControlNetPipeline

        from handdiff.models.loading import load_controlnet

        return StableDiffusionControlNetPipeline(**sd.components, controlnet=load_controlnet(controlnet, torch_dtype=sd.unet.dtype))

    def _condition(self, conditions: list[dict], size: int) -> dict[str, Any]:
        return {"image": pose_images(conditions, size, draw_skeleton if self.pose == "body+hands" else draw_openpose_body)}


class T2IAdapterOpenPoseGenerator(_DiffusersBaseline):
    """The OpenPose T2I-Adapter (``StableDiffusionAdapterPipeline``) on the body alone, drawn as
    its authors' annotator draws it (``draw_openpose_body``; ``TencentARC/T2I-Adapter``
    ``ldm/modules/extra_condition/openpose/api.py`` draws no hands). Adapter weight 1 at every
    step, DDIM, guidance 7.5: ``ldm/inference_base.py``'s ``--cond_weight 1.0``, ``--cond_tau
    1.0``, ``--sampler ddim``, ``--scale 7.5`` (diffusers' ``adapter_conditioning_scale`` 1 and
    its per-step adapter residuals are the same thing)."""

    method = "t2i-adapter-openpose"

    def __init__(self, base: str, adapter: str, **options):
        super().__init__(base, adapter=adapter, **options)

    def _pipeline(self, sd, adapter: str):
        from diffusers import StableDiffusionAdapterPipeline

        from handdiff.models.loading import load_t2i_adapter

        parts = {k: v for k, v in sd.components.items() if k != "image_encoder"}
        return StableDiffusionAdapterPipeline(**parts, adapter=load_t2i_adapter(adapter, torch_dtype=sd.unet.dtype))

    def _condition(self, conditions: list[dict], size: int) -> dict[str, Any]:
        return {"image": pose_images(conditions, size, draw_openpose_body)}


class HumanSDGenerator(Generator):
    """HumanSD on diffusers: an SD 2.1-base-shaped UNet whose ``conv_in`` takes 8 channels, the
    noisy latents concatenated with the VAE latents of HumanSD's own pose drawing
    (``draw_humansd_pose``: COCO-17 body, keypoints above ``pose_threshold``; ``conditioning_key:
    hybrid``), sampled with DDIM + CFG (the pose latents in both halves, as ``c_concat`` in
    ``scripts/pose2img.py``'s ``uc_full``), guidance 10 (its ``--scale`` default), from pure noise
    (its ``--strength 1.0``: ``do_full_sample``).

    ``humansd`` is a diffusers folder (SD layout, 8-channel UNet). The released
    ``humansd-v1.ckpt`` is a Lightning checkpoint: convert it once, where it is trusted, to
    safetensors with ``UNet2DConditionModel.from_single_file(ckpt, config=<SD 2.1-base folder
    with in_channels 8>, subfolder="unet")`` and ``save_pretrained``; loading it here never
    unpickles.
    """

    method = "humansd"
    authors_guidance = 10.0

    def __init__(
        self,
        humansd: str,
        steps: int = 50,
        guidance: float | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        pose_threshold: float = HUMANSD_THRESHOLD,
        **_unused,
    ):
        from diffusers import DDIMScheduler

        from handdiff.models.loading import load_sd_pipeline

        self.sd = load_sd_pipeline(humansd, torch_dtype=getattr(torch, dtype)).to(device)
        if self.sd.unet.config.in_channels != 8:
            raise ValueError(f"{humansd}: a HumanSD UNet takes 8 input channels, this one {self.sd.unet.config.in_channels}")
        self.scheduler = DDIMScheduler.from_config(self.sd.scheduler.config)
        self.steps, self.guidance, self.pose_threshold = steps, self.authors_guidance if guidance is None else guidance, pose_threshold
        self.settings = {"humansd": humansd, "steps": steps, "guidance": self.guidance, "pose_threshold": pose_threshold, "dtype": dtype}

    def pose_images(self, conditions: list[dict], size: int) -> list[Image.Image]:
        return pose_images(conditions, size, lambda keypoints, s: draw_humansd_pose(keypoints, s, self.pose_threshold))

    @torch.no_grad()
    def generate_batch(self, conditions: list[dict], size: int) -> list[Generated]:
        sd, device, dtype = self.sd, self.sd.unet.device, self.sd.unet.dtype
        start = time.perf_counter()
        pixels = torch.as_tensor(np.stack([np.asarray(im) for im in self.pose_images(conditions, size)])).permute(0, 3, 1, 2)
        pose = sd.vae.encode(pixels.to(device, dtype) / 127.5 - 1).latent_dist.mode() * sd.vae.config.scaling_factor
        guided = self.guidance > 1.0
        text = guided_prompts(sd.tokenizer, sd.text_encoder, [c["caption"] for c in conditions], guided, device, dtype)
        pose = torch.cat([pose, pose]) if guided else pose

        def predict(model_input: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # the pose latents beside the noise (c_concat)
            return sd.unet(torch.cat([model_input, pose], dim=1), t, text).sample

        noise = _initial_noise(conditions, size, sd.vae).to(device, dtype)
        images = decode(sd.vae, denoise(self.scheduler, noise, predict, self.steps, self.guidance))
        seconds = (time.perf_counter() - start) / len(conditions)
        return [Generated(_uint8(image.permute(1, 2, 0).cpu().numpy()), {"generate": seconds}) for image in images]

    def describe(self) -> dict[str, Any]:
        return dict(self.settings)


def hand_depth(hands: list[np.ndarray], size: int) -> Image.Image:
    """A depth-like image of ``hands`` ((21, 3) keypoints each, px) drawn from their 2D points (our
    stand-in for HandRefiner's hand-mesh depth, the stated deviation): each hand's bones as
    thick bright strokes and its palm filled, on black; nearer is brighter, and without 3D all
    hand pixels are "near"."""
    import cv2

    from handdiff.data.skeleton import HAND_BONES

    canvas = np.zeros((size, size), np.uint8)
    width = max(2, size // 64)
    palm = [0, 1, 5, 9, 13, 17]
    for hand in hands:
        here = hand[:, 2] > 0
        if here[palm].all():
            cv2.fillConvexPoly(canvas, cv2.convexHull(hand[palm, :2].astype(np.int32)), 200)
        for a, b in HAND_BONES:
            if here[a] and here[b]:
                cv2.line(canvas, tuple(int(v) for v in hand[a, :2]), tuple(int(v) for v in hand[b, :2]), 255, width)
    return Image.fromarray(np.repeat(canvas[..., None], 3, axis=2))


def handrefiner_mask(hands: list[np.ndarray], size: int) -> np.ndarray:
    """(size, size) bool: one rectangle per hand around its present points, each axis padded by
    max(15 % of the hand's extent + 1 px, 30 px at 512), clipped, as HandRefiner's
    ``get_mask_bounding_box`` (``preprocessor/meshgraphormer.py``: ``padding=30,
    dynamic_resize=0.15``, inclusive maxima)."""
    mask = np.zeros((size, size), bool)
    padding = max(1, round(30 * size / 512))
    for hand in hands:
        xy = hand[hand[:, 2] > 0, :2].astype(int)
        if not len(xy):
            continue
        (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
        px, py = max(int((x1 - x0 + 1) * 0.15), padding), max(int((y1 - y0 + 1) * 0.15), padding)
        mask[max(y0 - py, 0) : min(y1 + py, size - 1) + 1, max(x0 - px, 0) : min(x1 + px, size - 1) + 1] = True
    return mask


class HandRefinerGenerator(_DiffusersBaseline):
    """HandRefiner (``wenquanlu/HandRefiner``, ``handrefiner.py``) on SD 1.5's images: SD draws the
    image from the caption; the hands Mediapipe finds in it (HandRefiner's own
    ``MeshGraphormerMediapipe`` detects them with Mediapipe's hand landmarker at confidence
    0.6) get one padded rectangle each (``handrefiner_mask``) and a depth image; then the whole
    image is denoised again from pure noise with SD 1.5's 9-channel inpainting UNet (noisy
    latents, mask, masked-image latents) steered by the depth inpainting ControlNet
    (``control_sd15_inpaint_depth_hand``) at ``handrefiner_control_scale`` (HandRefiner's
    ``--strength``: ``model.control_scales = [strength] * 13``; 0.55 as its README's example),
    ``handrefiner_steps`` (50) DDIM steps at guidance ``handrefiner_guidance`` (9.0), putting the
    image's latents, noised to the coming step, back outside the mask before every step but the
    first's own noise (``cldm/ddim_hacked.py``: ``img = img_orig * (1. - mask) + mask * img``). The
    output is the whole decoded image, as HandRefiner writes it. An image where no hand is
    found is SD's, unrefined (HandRefiner has nothing to do there).

    Stated deviation: the depth comes from the detected hands' 2D keypoints (``hand_depth``), not
    from a Mesh Graphormer hand mesh fitted to them.

    ``sd_images``: a ``generate`` output of ``sd15`` with this base, steps, guidance and dtype on
    these conditions. Its images are the ones SD would draw here (each from its condition's seed),
    so they are refined instead of drawn again (a benchmark with both rows draws each once); a
    condition it has no image for is drawn. Another method's or settings' output is refused.
    """

    method = "handrefiner"

    def __init__(
        self,
        base: str,
        handrefiner: str,
        inpainting: str,
        handrefiner_control_scale: float = 0.55,
        handrefiner_steps: int = 50,
        handrefiner_guidance: float = 9.0,
        hand_detector: Callable[[np.ndarray], list[np.ndarray]] | None = None,
        sd_images: str | None = None,
        **options,
    ):
        super().__init__(base, handrefiner=handrefiner, inpainting=inpainting, **options)
        self.sd_images = sd_images
        if sd_images is not None:
            check_sd_images(sd_images, {k: self.settings[k] for k in ("base", "steps", "guidance", "dtype")})
        from diffusers import DDIMScheduler, StableDiffusionControlNetInpaintPipeline, UNet2DConditionModel

        from handdiff.models.loading import load_controlnet, resolve

        dtype = self.pipe.unet.dtype
        unet = UNet2DConditionModel.from_pretrained(resolve(inpainting), subfolder="unet", torch_dtype=dtype)
        if unet.config.in_channels != 9:
            raise ValueError(
                f"{inpainting}: HandRefiner's UNet is SD 1.5's inpainting UNet with 9 input channels, this one has "
                f"{unet.config.in_channels}"
            )
        parts = {k: v for k, v in self.pipe.components.items() if k not in ("image_encoder", "unet", "scheduler")}
        self.refiner = StableDiffusionControlNetInpaintPipeline(
            **parts,
            unet=unet,
            scheduler=DDIMScheduler.from_config(self.pipe.scheduler.config),
            controlnet=load_controlnet(handrefiner, torch_dtype=dtype),
        ).to(self.pipe.device)
        self.refiner.set_progress_bar_config(disable=True)
        self.control_scale, self.refine_steps, self.refine_guidance = handrefiner_control_scale, handrefiner_steps, handrefiner_guidance
        self.find_hands = hand_detector or _mediapipe_hands()
        self.settings.update(
            handrefiner_control_scale=handrefiner_control_scale,
            handrefiner_steps=handrefiner_steps,
            handrefiner_guidance=handrefiner_guidance,
            sd_images=sd_images,
        )

    def _pipeline(self, sd, handrefiner: str, inpainting: str):
        return sd

    def generate_batch(self, conditions: list[dict], size: int) -> list[Generated]:
        drawn = self.drawn_by_sd(conditions, size)
        missing = [i for i, g in enumerate(drawn) if g is None]
        if missing:
            for i, g in zip(missing, super().generate_batch([conditions[i] for i in missing], size), strict=True):
                drawn[i] = g
                g.details["sd_image"] = "drawn"
        start = time.perf_counter()
        hands = [self.find_hands(g.image) for g in drawn]
        todo = [i for i, found in enumerate(hands) if found]
        if todo:
            refined = self.refine([drawn[i].image for i in todo], [hands[i] for i in todo], [conditions[i] for i in todo], size)
            for i, image in zip(todo, refined, strict=True):
                drawn[i].image = image
        share = (time.perf_counter() - start) / len(conditions)
        for g, found in zip(drawn, hands, strict=True):
            g.seconds["refine"] = share
            g.details["refined_hands"] = len(found)
        return drawn

    def drawn_by_sd(self, conditions: list[dict], size: int) -> list[Generated | None]:
        """Each condition's image from ``sd_images`` where it has one at ``size``, else None."""
        from handdiff.data.images import decode_image

        out: list[Generated | None] = [None] * len(conditions)
        for i, c in enumerate(conditions if self.sd_images else []):
            try:  # one read per image, no existence check first (a request each on S3)
                image = decode_image(storage.read_bytes(storage.join(self.sd_images, "images", f"{c['image_id']}.png")))
            except FileNotFoundError:
                continue  # SD 1.5 made an error row for it: drawn here
            if image.shape == (size, size, 3):
                out[i] = Generated(image, {"generate": 0.0}, {"sd_image": "reused"})
        return out

    @torch.no_grad()
    def refine(self, images: list[np.ndarray], hands: list[list[np.ndarray]], conditions: list[dict], size: int) -> list[np.ndarray]:
        """HandRefiner's pass over ``images`` ((size, size, 3) uint8) with their ``hands``; the refined images."""
        pipe, device, dtype = self.refiner, self.refiner.device, self.refiner.unet.dtype
        factor = vae_factor(pipe.vae)
        masks = np.stack([handrefiner_mask(h, size) for h in hands])
        generators = seed_generators([c["seed"] for c in conditions], offset=1)
        pixels = torch.as_tensor(np.stack(images)).permute(0, 3, 1, 2).to(device, dtype) / 127.5 - 1
        original = torch.cat([pipe.vae.encode(pixels[i : i + 1]).latent_dist.sample(generators[i]) for i in range(len(images))])
        original = original * pipe.vae.config.scaling_factor
        # HandRefiner resizes the mask to the latents with F.interpolate's default (nearest), as diffusers does for the UNet's mask channel
        keep = 1 - torch.nn.functional.interpolate(torch.as_tensor(masks[:, None], dtype=dtype), size=(size // factor,) * 2).to(device)
        pipe.scheduler.set_timesteps(self.refine_steps, device=device)
        timesteps = pipe.scheduler.timesteps

        def noised(t) -> torch.Tensor:
            noise = seeded_noise(generators, original.shape[1:]).to(device, dtype)
            return pipe.scheduler.add_noise(original, noise, t.reshape(1))

        def reinject(pipeline, i, t, tensors):  # before step i + 1: the image's latents noised to it, outside the mask
            if i + 1 < len(timesteps):
                tensors["latents"] = keep * noised(timesteps[i + 1]) + (1 - keep) * tensors["latents"]
            return tensors

        start = _initial_noise(conditions, size, pipe.vae).to(device, dtype)
        start = keep * noised(timesteps[0]) + (1 - keep) * start
        out = pipe(
            [c["caption"] for c in conditions],
            image=[Image.fromarray(im) for im in images],
            mask_image=[Image.fromarray(m.astype(np.uint8) * 255) for m in masks],
            control_image=[hand_depth(h, size) for h in hands],
            height=size,
            width=size,
            strength=1.0,
            num_inference_steps=self.refine_steps,
            guidance_scale=self.refine_guidance,
            controlnet_conditioning_scale=self.control_scale,
            generator=generators,
            latents=start / pipe.scheduler.init_noise_sigma,
            callback_on_step_end=reinject,
            output_type="np",
        ).images
        return list(_uint8(out))


def check_sd_images(sd_images: str, settings: dict[str, Any]) -> None:
    """Refuse ``sd_images`` unless its records say ``sd15`` drew them with ``settings`` (base,
    steps, guidance, dtype): another method's images would not be the ones HandRefiner refines."""
    from handdiff.data.parts import read_parts

    records = read_parts(storage.join(sd_images, "records"), ["method", "models"]).to_pylist()
    drawn = {(r["method"], r["models"]) for r in records}
    wanted = ("sd15", json.dumps(settings, sort_keys=True, default=str))
    if drawn != {wanted}:
        found = ", ".join(sorted(f"{m} {models}" for m, models in drawn)) or "no records"
        raise ValueError(f"sd_images {sd_images}: HandRefiner refines SD 1.5's images drawn with {wanted[1]}; these are {found}")


def _mediapipe_hands() -> Callable[[np.ndarray], list[np.ndarray]]:
    """Mediapipe's hand landmarker on an (H, W, 3) uint8 image -> each found hand's (21, 3) points
    (px, score 1), as HandRefiner finds the hands to repair (confidence 0.6, at most two)."""
    from handdiff.annotation.wholebody import HandLandmarks

    return HandLandmarks(max_hands=2, min_detection_confidence=0.6)
