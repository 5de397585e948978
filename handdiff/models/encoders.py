"""Precomputed encodings for the training sets (beyond the paper, for speed): SD 1.5's frozen
VAE encoder and CLIP text encoder run once per image on GPU actors, so training skips them.

``SDEncoders`` is the Ray-free encoder; ``EncodeCrops`` (stage 1) and ``EncodeOutpaint``
(stage 2) are Ray Data callable classes over the jobs' work rows: rows already in error
pass through untouched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pyarrow as pa

from handdiff.data.hand_crops import HAND_CROP_SCHEMA
from handdiff.data.images import decode_image
from handdiff.data.outpaint import OUTPAINT_SCHEMA
from handdiff.data.work_rows import for_ok_rows, work_schema


class SDEncoders:
    """SD 1.5's VAE encoder and text encoder on ``device``; outputs are float16 numpy arrays."""

    def __init__(self, base: str, device: str = "cpu", dtype: str = "float32"):
        import torch

        from handdiff.models.loading import load_sd_pipeline

        pipe = load_sd_pipeline(base, torch_dtype=getattr(torch, dtype))
        self.vae, self.text_encoder, self.tokenizer = pipe.vae.to(device).eval(), pipe.text_encoder.to(device).eval(), pipe.tokenizer
        self.device, self.dtype = device, getattr(torch, dtype)

    def text(self, captions: list[str]) -> np.ndarray:
        """(B, 77, D) float16 CLIP embeddings."""
        import torch

        from handdiff.models.sd_parts import encode_prompts

        with torch.inference_mode():
            return encode_prompts(self.tokenizer, self.text_encoder, captions, self.device).to(torch.float16).cpu().numpy()

    def latents(self, images: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, 4, H/8, W/8) float16 latents (the distribution's mode, scaled)."""
        import torch

        with torch.inference_mode():
            pixels = torch.as_tensor(images, device=self.device).permute(0, 3, 1, 2).to(self.dtype) / 127.5 - 1
            latents = self.vae.encode(pixels).latent_dist.mode() * self.vae.config.scaling_factor
            return latents.to(torch.float16).cpu().numpy()


class _EncodeRows(ABC):
    """A Ray Data stage over a job's work rows: ``encode(rows)`` fills the ok rows in place."""

    schema: pa.Schema

    def __init__(self, base: str, device: str = "cpu", dtype: str = "float32"):
        self.encoders = SDEncoders(base, device, dtype)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return for_ok_rows(batch, lambda rows: self.encode(rows) if rows else None, self.schema)

    @abstractmethod
    def encode(self, rows: list[dict]) -> None:
        """Fill ``rows`` (the batch's ok work rows, at least one) in place."""


class EncodeCrops(_EncodeRows):
    """Hand-crop work rows -> the same rows with ``text_embedding`` and every crop's ``latents``."""

    schema = work_schema(HAND_CROP_SCHEMA)

    def encode(self, rows: list[dict]) -> None:
        for row, embedding in zip(rows, self.encoders.text([r["caption"] for r in rows]), strict=True):
            row["text_embedding"] = embedding.tobytes()
            latents = self.encoders.latents(np.stack([decode_image(c["image"]) for c in row["crops"]]))
            for crop, latent in zip(row["crops"], latents, strict=True):
                crop["latents"] = latent.tobytes()


class EncodeOutpaint(_EncodeRows):
    """Outpaint work rows -> the same rows with ``text_embedding``, ``latents`` and ``canvas_latents``."""

    schema = work_schema(OUTPAINT_SCHEMA)

    def encode(self, rows: list[dict]) -> None:
        texts = self.encoders.text([r["caption"] for r in rows])
        images = self.encoders.latents(np.stack([decode_image(r["image"]) for r in rows]))
        canvases = self.encoders.latents(np.stack([decode_image(r["canvas"]) for r in rows]))
        for row, text, image, canvas in zip(rows, texts, images, canvases, strict=True):
            row.update(text_embedding=text.tobytes(), latents=image.tobytes(), canvas_latents=canvas.tobytes())
