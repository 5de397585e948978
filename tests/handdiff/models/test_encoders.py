"""The precompute stages: latents and text embeddings in the rows, errors passed through."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from handdiff.assets.tiny_zoo import model_locations
from handdiff.data.images import decode_image, encode_image
from handdiff.data.outpaint import make_canvas
from handdiff.data.rle import encode_rle
from handdiff.data.set_stages import OUTPAINT_WORK_SCHEMA
from handdiff.data.work_rows import ERROR, OK, fail, new_row
from handdiff.models.encoders import EncodeOutpaint
from handdiff.models.loading import load_sd_pipeline


def test_outpaint_rows_get_image_and_canvas_latents_and_text(tiny_zoo):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[8:24, 8:24] = True
    ok = new_row(
        OUTPAINT_WORK_SCHEMA,
        image_id="x/1",
        dataset="x",
        split="train",
        caption="a person",
        image=encode_image(image, "PNG"),
        canvas=encode_image(make_canvas(image, mask), "PNG"),
        mask=encode_rle(mask),
        size=64,
    )
    broken = new_row(OUTPAINT_WORK_SCHEMA, image_id="x/2", dataset="x")
    fail(broken, "make", "no hand masks")
    out = EncodeOutpaint(model_locations(tiny_zoo)["sd15"])(pa.Table.from_pylist([ok, broken], schema=OUTPAINT_WORK_SCHEMA)).to_pylist()
    assert [r["status"] for r in out] == [OK, ERROR] and out[1]["latents"] is None
    sd = load_sd_pipeline(model_locations(tiny_zoo)["sd15"])
    with torch.no_grad():
        for field, key in (("latents", "image"), ("canvas_latents", "canvas")):
            pixels = torch.as_tensor(decode_image(out[0][key])).permute(2, 0, 1)[None].float() / 127.5 - 1
            expected = sd.vae.encode(pixels).latent_dist.mode() * sd.vae.config.scaling_factor
            got = np.frombuffer(out[0][field], np.float16).reshape(1, 4, 8, 8)
            assert np.allclose(got, expected.numpy(), atol=1e-2), field
    assert np.frombuffer(out[0]["text_embedding"], np.float16).reshape(77, -1).shape[1] == sd.text_encoder.config.hidden_size
