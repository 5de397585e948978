"""Stage 2's training batches (handdiff.training.body_batches): decoded rows, or their precomputed encodings."""

from __future__ import annotations

from handdiff.training.body_batches import outpaint_batch
from tests.handdiff.training.test_body_step import rows


def test_batches_decode_rows_or_pass_precomputed_encodings():
    batch = outpaint_batch(rows(), caption_dropout=0.0)
    assert batch["pixels"].shape == batch["canvas"].shape == batch["skeleton"].shape == (2, 64, 64, 3)
    assert batch["mask"].shape == (2, 64, 64) and batch["mask"].sum() == 2 * 16 * 16
    encoded = outpaint_batch(rows(encoded=True), caption_dropout=1.0)
    assert "pixels" not in encoded and encoded["latents"].shape == encoded["canvas_latents"].shape == (2, 4, 8, 8)
    assert encoded["text_embedding"].shape == (2, 77, 32) and list(encoded["caption"]) == ["", ""]
