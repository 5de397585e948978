"""Generators behind one small interface, so that ``generate`` (and the benchmark) run any
method the same way: ours (``handdiff``), and the baselines the benchmark adds.

A generator is built once per actor from plain options (model locations, settings) and
turns a batch of condition rows (``handdiff.data.conditions.CONDITION_SCHEMA``) into images,
in one batched pass where the method allows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Generated:
    image: np.ndarray
    """(H, W, 3) uint8."""
    seconds: dict[str, float] = field(default_factory=dict)
    """This image's share of each stage's time."""
    details: dict[str, Any] = field(default_factory=dict)
    """What the method wants kept in the metadata (JSON-able): e.g. hands, boxes, mask sizes."""
    canvas: np.ndarray | None = None
    """(H, W, 3) uint8: an intermediate worth looking at (ours: the stage-1 hands on the canvas)."""
    stage1: np.ndarray | None = None
    """(2S, n S, 3) uint8, ours with the pixel hand-off: stage 1's n crops in a row, their predicted
    mask probabilities below (grey: black 0, white 1), so that what stage 1 drew is visible even
    where the masks stay under the threshold."""


def stage1_strip(crops: list[np.ndarray], probabilities: list[np.ndarray]) -> np.ndarray | None:
    """Stage 1's (S, S, 3) crops side by side over their (S, S) mask probabilities; None without crops."""
    if not crops:
        return None
    masks = [np.repeat((np.clip(p, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=2) for p in probabilities]
    return np.concatenate([np.concatenate(crops, axis=1), np.concatenate(masks, axis=1)], axis=0)


def by_size(conditions: list[dict]) -> list[tuple[int, list[int]]]:
    """``(size, indices)`` per output size, sizes ascending: one batched pass each."""
    sizes = sorted({int(c["size"]) for c in conditions})
    return [(size, [i for i, c in enumerate(conditions) if int(c["size"]) == size]) for size in sizes]


class Generator(ABC):
    method: str

    def generate(self, conditions: list[dict]) -> list[Generated]:
        """One image per condition row (``keypoints``, ``caption``, ``size``, ``seed``), in their
        order; one ``generate_batch`` per output size."""
        out: list[Generated | None] = [None] * len(conditions)
        for size, group in by_size(conditions):
            for i, generated in zip(group, self.generate_batch([conditions[i] for i in group], size), strict=True):
                out[i] = generated
        return out

    @abstractmethod
    def generate_batch(self, conditions: list[dict], size: int) -> list[Generated]:
        """One (size, size, 3) image per condition row, all of output side ``size``."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Model ids and settings, for the metadata and MLflow."""


class HandDiffGenerator(Generator):
    """Ours: two-stage generation (``handdiff.inference.two_stage``)."""

    method = "handdiff"

    def __init__(
        self,
        hand_model: str,
        body_model: str,
        device: str = "cpu",
        dtype: str = "float32",
        crop_size: int | None = None,
        crop_margin: float | None = None,
        **settings,
    ):
        """``crop_size`` / ``crop_margin``: None, or the values the hand model was trained with
        (ValueError otherwise); ``settings``: ``TwoStageSettings``' fields (as a job's ``handdiff``
        section dumps them)."""
        import torch

        from handdiff.inference.settings import TwoStageSettings
        from handdiff.inference.two_stage import TwoStagePipeline, check_against_trained
        from handdiff.models.loading import resolve

        self.models = {"hand_model": hand_model, "body_model": body_model}
        self.pipeline = TwoStagePipeline.from_pretrained(resolve(hand_model), resolve(body_model), getattr(torch, dtype)).to(device)
        check_against_trained({"crop_size": crop_size, "crop_margin": crop_margin}, self.pipeline.trained_settings(), hand_model)
        self.settings = TwoStageSettings(**settings)

    def generate_batch(self, conditions: list[dict], size: int) -> list[Generated]:
        results = self.pipeline(
            [np.asarray(c["keypoints"], np.float32).reshape(133, 3) for c in conditions],
            [c["caption"] for c in conditions],
            [int(c["seed"]) for c in conditions],
            size,
            self.settings,
        )
        return [
            Generated(
                r.image,
                r.seconds,
                {"hands": r.hands, "boxes": r.boxes, "mask_sizes": r.mask_sizes},
                r.canvas,
                stage1_strip(r.crops, r.crop_mask_probabilities),
            )
            for r in results
        ]

    def describe(self) -> dict[str, Any]:
        return {**self.models, **self.pipeline.trained_settings(), **self.settings.model_dump()}


class OracleGenerator(Generator):
    """The ceiling of every metric: the real image of each condition, from a benchmark set
    (``handdiff.data.conditions.BENCHMARK_SCHEMA``)."""

    method = "oracle"

    def __init__(self, conditions: str, **_unused):
        from handdiff.data.parts import read_parts

        self.conditions = conditions
        table = read_parts(f"{conditions}/records", ["image_id", "real_image"])
        self.images = dict(zip(table.column("image_id").to_pylist(), table.column("real_image").to_pylist(), strict=True))

    def generate_batch(self, conditions: list[dict], size: int) -> list[Generated]:
        from handdiff.data.images import decode_image

        missing = [c["image_id"] for c in conditions if c["image_id"] not in self.images]
        if missing:
            raise KeyError(f"no real image for {missing[:3]} in {self.conditions}")
        return [Generated(decode_image(self.images[c["image_id"]]), {"oracle": 0.0}) for c in conditions]

    def describe(self) -> dict[str, Any]:
        return {"conditions": self.conditions}
