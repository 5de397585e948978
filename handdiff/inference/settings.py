"""Two-stage inference settings: a light module (no model library), so that a job's config can
hold them and be checked on a driver that never loads a model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from handdiff.config import StrictModel


class TwoStageSettings(StrictModel):
    """Inference-time choices only (what training chose travels with the models; the output side
    comes with the keypoints). Generate's ``handdiff`` section is this plus the model locations."""

    hand_steps: int = Field(50, ge=1)
    hand_guidance: float = 7.5
    body_steps: int = Field(50, ge=3)
    body_guidance: float = 7.5
    mask_threshold: float = Field(0.5, gt=0, lt=1)
    """Stage 1's mask probabilities above it are hand (pasted, and shown to the ControlNet)."""
    strategy: Literal["sme", "naive", "bbox"] = "sme"
    """How stage 2 blends the hands in: sequential mask expansion (the paper's), the exact mask at
    every step, or the crop squares."""
    sme_kernel: int = Field(3, ge=1)
    """Dilation square of sequential mask expansion (our choice: 3, one pixel per side per step)."""
    unmasked_last_steps: int = Field(2, ge=0)
    """Stage 2's last steps without blending (the paper: 2)."""
    handoff: Literal["pixel", "latent"] = "pixel"
    """Stage 1's crops reach stage 2 as pixels (decoded, pasted, encoded) or as latents."""
