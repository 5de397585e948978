"""Training batches for stage 2, made on CPU workers (a Ray Data stage in the trainer): the
outpaint rows decoded, captions dropped with probability ``caption_dropout`` (for
classifier-free guidance; our choice, as in stage 1). No pixel augmentation: the paper
names none for stage 2, so precomputed latents lose nothing here.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from handdiff.data.images import decode_image
from handdiff.data.rle import decode_rle
from handdiff.training.hand_batches import drop_captions


def outpaint_batch(batch: pa.Table, caption_dropout: float = 0.1, seed: int | None = None) -> dict[str, np.ndarray]:
    """Outpaint rows -> numpy training batch.

    Returns ``skeleton`` (B, S, S, 3) uint8, ``mask`` (B, S, S) uint8 {0, 1}, ``caption``
    (B,) str ("" when dropped) and either ``pixels`` and ``canvas`` (B, S, S, 3) uint8 or,
    when the set holds precomputed encodings, ``latents`` and ``canvas_latents`` (B, 4, S/8,
    S/8) float16 and ``text_embedding`` (B, 77, D) float16.
    """
    rng = np.random.default_rng(seed)
    rows = batch.to_pylist()
    out = {
        "skeleton": np.stack([decode_image(r["skeleton"]) for r in rows]),
        "mask": np.stack([decode_rle(r["mask"]).astype(np.uint8) for r in rows]),
        "caption": np.array(drop_captions([r["caption"] for r in rows], caption_dropout, rng), dtype=object),
    }
    if all(r["latents"] is not None and r["canvas_latents"] is not None and r["text_embedding"] is not None for r in rows):
        latent = (4, rows[0]["size"] // 8, rows[0]["size"] // 8)
        out["latents"] = np.stack([np.frombuffer(r["latents"], np.float16).reshape(latent) for r in rows])
        out["canvas_latents"] = np.stack([np.frombuffer(r["canvas_latents"], np.float16).reshape(latent) for r in rows])
        out["text_embedding"] = np.stack([np.frombuffer(r["text_embedding"], np.float16).reshape(77, -1) for r in rows])
    else:
        out["pixels"] = np.stack([decode_image(r["image"]) for r in rows])
        out["canvas"] = np.stack([decode_image(r["canvas"]) for r in rows])
    return out
