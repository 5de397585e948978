"""Two-stage generation of a person from whole-body keypoints (SPEC 6).

1. Hands: each hand crop box from the target keypoints by the rule the training crops used
   (``handdiff.data.hand_crops.plan_hand_crops``: hands with ``min_hand_points`` present
   points, both hands in one square when their boxes intersect), the 11-channel condition
   (mask channel empty: the generator was trained to work without one), stage-1 generation of
   crop and mask (DDIM, CFG).
2. Canvas: each crop's background removed with its predicted mask (``mask_threshold``),
   resized (area-averaged where it shrinks) and pasted at its box onto a ``fill`` canvas; the
   hand mask likewise.

What training chose is read from the models, never from settings of this module: the crop
size, crop margin, heatmap sigma and hand rule from the hand generator's config
(``HandGenerator.crop_settings``), the canvas fill from the body pipeline's ``OutpaintSettings``.
3. Body: stage 2 outpaints around the canvas with the ``strategy``'s blend masks
   (``handdiff.inference.blending``: ``sme`` default, ``naive``, ``bbox``), the ControlNet
   always seeing the exact hand mask, the last ``unmasked_last_steps`` (2) unblended.
4. Paste-back: the stage-1 hand pixels replace the decoded image under the hand mask.

Hand-off (beyond the paper, its stated future work): ``pixel`` is the paper's path;
``latent`` places the stage-1 latents straight into the stage-2 latent grid (resized in
latent space, masked at latent size), skipping the stage-1 VAE decode and the canvas VAE
encode (two VAE passes per image; the final decode is the only one left), and the image is
the stage-2 decode (no pixel paste-back, there are no stage-1 pixels).

A pose without a visible hand falls back to stage 2 alone (our choice): no canvas, an empty
hand mask, so the ControlNet draws the whole person; the result says ``hands == 0``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from handdiff.data.hand_crops import crop_keypoints, plan_hand_crops
from handdiff.data.skeleton import draw_skeleton
from handdiff.inference.blending import blend_masks
from handdiff.inference.compose import paste_square
from handdiff.inference.settings import TwoStageSettings
from handdiff.models.body_pipeline import BodyOutpaintPipeline
from handdiff.models.conditioning import hand_condition
from handdiff.models.hand_pipeline import HandGenerationPipeline
from handdiff.models.sampling import seed_generators, seeded_noise
from handdiff.models.sd_parts import vae_factor


@dataclass
class TwoStageResult:
    image: np.ndarray
    """(H, W, 3) uint8, the person."""
    hands: int
    """Stage-1 crops made (0: no visible hand, stage 2 alone)."""
    boxes: list[tuple[float, float, float]]
    """Each crop's square ``(x0, y0, side)`` in output pixels."""
    crops: list[np.ndarray]
    """Each crop as stage 1 made it, (S, S, 3) uint8 (pixel hand-off only)."""
    crop_masks: list[np.ndarray]
    """Each crop's predicted hand mask, (S, S) bool (``mask_threshold`` applied)."""
    crop_mask_probabilities: list[np.ndarray]
    """Each crop's predicted hand mask before the threshold, (S, S) float32 in [0, 1]."""
    hand_mask: np.ndarray
    """(H, W) bool, the hands on the canvas (what the ControlNet sees)."""
    canvas: np.ndarray | None
    """(H, W, 3) uint8, the hands on the fill (pixel hand-off only)."""
    mask_sizes: list[int]
    """Per masked denoising step, the blend mask's area in pixels (latent cells x 64)."""
    seconds: dict[str, float] = field(default_factory=dict)
    """This image's share of each stage's time (the batch's time / batch size)."""


TRAINED_SETTINGS = ("crop_size", "crop_margin", "heatmap_sigma", "min_hand_points", "fill")
"""What the two models carry from training (``TwoStagePipeline.trained_settings``)."""


def check_against_trained(requested: dict, trained: dict, where: str) -> None:
    """ValueError naming every ``requested`` value (None: not requested) that contradicts what
    the models were trained with (``trained``), e.g. a config's ``crop_size`` of 512 for a hand
    generator trained on 128-px crops."""
    conflicts = [
        f"{key}={value!r} but the models were trained with {key}={trained[key]!r}"
        for key, value in requested.items()
        if value is not None and value != trained[key]
    ]
    if conflicts:
        raise ValueError(f"{where}: " + "; ".join(conflicts) + " (saved with the models at training; leave the setting unset to use it)")


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8."""
    return (images.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)


class TwoStagePipeline:
    def __init__(self, hand: HandGenerationPipeline, body: BodyOutpaintPipeline):
        self.hand, self.body = hand, body
        self._fill_latents: dict[int, torch.Tensor] = {}

    @classmethod
    def from_pretrained(cls, hand_dir: str | Path, body_dir: str | Path, torch_dtype: torch.dtype | None = None) -> TwoStagePipeline:
        return cls(
            HandGenerationPipeline.from_pretrained(hand_dir, torch_dtype), BodyOutpaintPipeline.from_pretrained(body_dir, torch_dtype)
        )

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> TwoStagePipeline:
        self.hand.to(device, dtype)
        self.body.to(device, dtype)
        self._fill_latents.clear()
        return self

    def trained_settings(self) -> dict:
        """``{crop_size, crop_margin, heatmap_sigma, min_hand_points, fill}`` as the models were trained."""
        return {**self.hand.generator.crop_settings(), "fill": self.body.settings.config.fill}

    def fill_latents(self, fill: int) -> torch.Tensor:
        """(4, 1, 1) the latents of a plain ``fill`` grey image (the latent canvas's background)."""
        if fill not in self._fill_latents:
            factor = vae_factor(self.body.vae)
            grey = torch.full((1, 3, 4 * factor, 4 * factor), fill / 255)
            self._fill_latents[fill] = self.body.encode_canvas(grey).mean(dim=(2, 3))[0, :, None, None]
        return self._fill_latents[fill]

    def _sync(self) -> float:
        if self.body.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    @torch.no_grad()
    def __call__(
        self, keypoints: list[np.ndarray], captions: list[str], seeds: list[int], size: int, settings: TwoStageSettings | None = None
    ) -> list[TwoStageResult]:
        """One ``size``-px square person per (133, 3) keypoints (in that square's pixels), caption
        and seed; batched through both stages. An image depends only on its own inputs and seed."""
        s = settings or TwoStageSettings()
        t = self.trained_settings()
        batch, factor, crop_size = len(keypoints), vae_factor(self.body.vae), t["crop_size"]
        generators = seed_generators(seeds)
        plans = [plan_hand_crops(np.asarray(k, np.float32), t["crop_margin"], t["min_hand_points"]) for k in keypoints]
        owners = [(b, plan) for b, image_plans in enumerate(plans) for plan in image_plans]
        seconds: dict[str, float] = {}

        # 1. stage 1: every crop of the batch in one pass
        start = self._sync()
        hands = None
        if owners:
            crop_points = torch.as_tensor(
                np.stack([crop_keypoints(np.asarray(keypoints[b], np.float32), plan, crop_size) for b, plan in owners])
            )
            condition = hand_condition(crop_points, torch.zeros(len(owners), crop_size, crop_size), t["heatmap_sigma"])
            noise = seeded_noise([generators[b] for b, _ in owners], (4, crop_size // factor, crop_size // factor))
            hands = self.hand(
                [captions[b] for b, _ in owners],
                condition,
                s.hand_steps,
                s.hand_guidance,
                latents=noise,
                decode_images=s.handoff == "pixel",
            )
        seconds["stage1"] = self._sync() - start

        # 2. canvas: crops without their background, pasted at their boxes
        start = self._sync()
        hand_mask, square_mask = torch.zeros(batch, 1, size, size), torch.zeros(batch, 1, size, size)
        canvas = torch.full((batch, 3, size, size), t["fill"] / 255)
        canvas_latents = self.fill_latents(t["fill"]).cpu().expand(batch, 4, size // factor, size // factor).clone()
        crop_masks, probabilities = [], []
        for i, (b, plan) in enumerate(owners):
            probabilities.append(hands.masks[i, 0].float().cpu().numpy())
            keep = (hands.masks[i].cpu() > s.mask_threshold).float()
            crop_masks.append(keep[0].numpy().astype(bool))
            region = None if s.strategy == "bbox" else keep  # bbox keeps the crop's own background
            if s.handoff == "pixel":
                paste_square(canvas[b], hands.images[i].cpu(), plan.x0, plan.y0, plan.side, region)
            else:
                paste_square(canvas_latents[b], hands.latents[i].float().cpu(), plan.x0, plan.y0, plan.side, region, factor=factor)
            paste_square(hand_mask[b], keep, plan.x0, plan.y0, plan.side, keep, binary=True)
            paste_square(square_mask[b], torch.ones_like(keep), plan.x0, plan.y0, plan.side, binary=True)
        masked_steps = max(0, s.body_steps - s.unmasked_last_steps)
        blends = blend_masks(s.strategy, hand_mask, square_mask, masked_steps, (size // factor, size // factor), s.sme_kernel)
        seconds["compose"] = self._sync() - start

        # 3. stage 2 around the canvas, 4. paste-back
        start = self._sync()
        skeleton = (
            torch.as_tensor(np.stack([draw_skeleton(np.asarray(k, np.float32), size) for k in keypoints])).permute(0, 3, 1, 2).float() / 255
        )
        if s.handoff == "pixel":
            canvas_latents = self.body.encode_canvas(canvas)
        noise = seeded_noise(generators, (4, size // factor, size // factor))
        body = self.body(
            captions,
            skeleton,
            hand_mask,
            canvas_latents=canvas_latents,
            num_inference_steps=s.body_steps,
            guidance_scale=s.body_guidance,
            blend_masks=blends,
            unmasked_last_steps=s.unmasked_last_steps,
            latents=noise,
        )
        images = body.images.cpu()
        if s.handoff == "pixel":
            images = torch.where(hand_mask > 0, canvas, images)
        seconds["stage2"] = self._sync() - start

        results, crop_index = [], 0
        for b in range(batch):
            n = len(plans[b])
            indices = list(range(crop_index, crop_index + n))
            crop_index += n
            results.append(
                TwoStageResult(
                    image=_to_uint8(images[b : b + 1])[0],
                    hands=n,
                    boxes=[(p.x0, p.y0, p.side) for p in plans[b]],
                    crops=list(_to_uint8(hands.images[indices])) if n and hands.images is not None else [],
                    crop_masks=[crop_masks[i] for i in indices],
                    crop_mask_probabilities=[probabilities[i] for i in indices],
                    hand_mask=hand_mask[b, 0].numpy() > 0,
                    canvas=_to_uint8(canvas[b : b + 1])[0] if s.handoff == "pixel" else None,
                    mask_sizes=[int(round(float(m[b].sum()) * factor * factor)) for m in blends],
                    seconds={k: v / batch for k, v in seconds.items()},
                )
            )
        return results
