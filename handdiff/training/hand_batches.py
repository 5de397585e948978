"""Training batches for stage 1, made on CPU workers (a Ray Data stage in the trainer).

Each call draws, per row, one of its candidate crops at random (the paper's "one hand at
random", anew each epoch since the draws are unseeded), decodes it, augments its colours,
and replaces its caption by the empty one with probability ``caption_dropout`` (for
classifier-free guidance). The mask channel of the condition is dropped later, in the
training step, where the condition is built.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from handdiff.data.images import decode_image
from handdiff.data.rle import decode_rle
from handdiff.training.augment import color_augment


def drop_captions(captions: list[str], p: float, rng: np.random.Generator) -> list[str]:
    """Each caption replaced by "" with probability ``p``."""
    return ["" if rng.random() < p else c for c in captions]


def hand_crop_batch(
    batch: pa.Table, caption_dropout: float = 0.1, augment: dict | None = None, seed: int | None = None
) -> dict[str, np.ndarray]:
    """Hand-crop rows -> numpy training batch (``augment``: ``color_augment`` options; None: off).

    Returns ``keypoints`` (B, 42, 3) float32 crop px, ``mask`` (B, S, S) uint8 {0, 1},
    ``caption`` (B,) str ("" when dropped) and either ``pixels`` (B, S, S, 3) uint8 or, when
    the set holds precomputed encodings, ``latents`` (B, 4, S/8, S/8) float16 and
    ``text_embedding`` (B, 77, D) float16 (the trainer swaps in the empty caption's
    embedding where ``caption`` is "").
    """
    rng = np.random.default_rng(seed)
    rows = batch.to_pylist()
    crops = [row["crops"][rng.integers(len(row["crops"]))] for row in rows]
    size = rows[0]["crop_size"]
    captions = drop_captions([row["caption"] for row in rows], caption_dropout, rng)
    out = {
        "keypoints": np.stack([np.asarray(c["keypoints"], np.float32).reshape(42, 3) for c in crops]),
        "mask": np.stack([decode_rle(c["mask"]).astype(np.uint8) for c in crops]),
        "caption": np.array(captions, dtype=object),
    }
    if all(c["latents"] is not None for c in crops) and all(r["text_embedding"] is not None for r in rows):
        if augment is not None:  # precomputed latents fix the pixels: augmenting would be silently skipped
            raise ValueError(
                "colour augmentation was asked for, but these crops hold precomputed latents (fixed pixels): "
                "set train.augment=null, or build the crop set without precompute"
            )
        out["latents"] = np.stack([np.frombuffer(c["latents"], np.float16).reshape(4, size // 8, size // 8) for c in crops])
        out["text_embedding"] = np.stack([np.frombuffer(r["text_embedding"], np.float16).reshape(77, -1) for r in rows])
    else:
        pixels = np.stack([decode_image(c["image"]) for c in crops])
        out["pixels"] = color_augment(pixels, rng, **(augment or {})) if augment is not None else pixels
    return out
