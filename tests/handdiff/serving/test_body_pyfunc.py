"""The stage-2 pyfunc (handdiff.serving.body_pyfunc) on a saved tiny pipeline: the canvas's size,
repeatable by seed, and the paper's unmasked last steps a param."""

from __future__ import annotations

import numpy as np
import pandas as pd

from handdiff.assets.figures import person_keypoints
from handdiff.data.images import decode_image, encode_image
from handdiff.data.rle import encode_rle
from handdiff.serving.body_pyfunc import PARAMS, BodyOutpainterModel
from tests.handdiff.serving.conftest import loaded


def frame(size: int = 64) -> pd.DataFrame:
    keypoints = person_keypoints(
        size / 2, 4, size - 8, {"left": True, "right": True}, {"left": "palm", "right": "fist"}, np.random.default_rng(0)
    )
    canvas = np.full((size, size, 3), 127, np.uint8)
    mask = np.zeros((size, size), bool)
    mask[20:30, 40:52] = True
    canvas[mask] = (200, 150, 120)
    return pd.DataFrame(
        {
            "caption": ["a person"],
            "keypoints": [keypoints.reshape(-1).tolist()],
            "canvas": [encode_image(canvas, "PNG")],
            "mask": [encode_rle(mask)],
        }
    )


def test_the_body_comes_at_the_canvas_size_repeatable_by_seed(saved):
    model = loaded(BodyOutpainterModel(), pipeline=saved.body)
    assert PARAMS["unmasked_last_steps"] == 2  # the paper's inference
    out = model.predict(None, frame(), {"steps": 4, "seed": 1})["image"][0]
    assert decode_image(out).shape == (64, 64, 3)
    assert out == model.predict(None, frame(), {"steps": 4, "seed": 1})["image"][0]
    assert out != model.predict(None, frame(), {"steps": 4, "seed": 2})["image"][0]
    assert out != model.predict(None, frame(), {"steps": 4, "seed": 1, "unmasked_last_steps": 0})["image"][0]  # the param is used
