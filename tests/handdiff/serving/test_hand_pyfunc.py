"""The stage-1 pyfunc (handdiff.serving.hand_pyfunc) on a saved tiny pipeline: crops of the
model's own size, repeatable by seed, and the hands' mask taken when given."""

from __future__ import annotations

import numpy as np
import pandas as pd

from handdiff.data.images import decode_image
from handdiff.data.rle import decode_rle, encode_rle
from handdiff.serving.hand_pyfunc import HandGeneratorModel
from tests.handdiff.serving.conftest import CROP, loaded


def frame(mask: np.ndarray | None = None) -> pd.DataFrame:
    keypoints = np.zeros((42, 3), np.float32)
    keypoints[:21] = np.column_stack([np.linspace(6, 26, 21), np.linspace(6, 26, 21), np.ones(21)])  # a left hand in crop pixels
    return pd.DataFrame(
        {"caption": ["a hand"], "keypoints": [keypoints.reshape(-1).tolist()], "mask": [None if mask is None else encode_rle(mask)]}
    )


def test_crops_come_at_the_model_s_size_repeatable_by_seed_and_shaped_by_the_mask(saved):
    model = loaded(HandGeneratorModel(), pipeline=saved.hand)
    out = model.predict(None, frame(), {"steps": 2, "seed": 3})
    image = decode_image(out["image"][0])
    assert image.shape == (CROP, CROP, 3) and decode_rle(out["mask"][0]).shape == (CROP, CROP)
    assert out["image"][0] == model.predict(None, frame(), {"steps": 2, "seed": 3})["image"][0]  # the same seed: the same bytes
    assert out["image"][0] != model.predict(None, frame(), {"steps": 2, "seed": 4})["image"][0]
    hands = np.zeros((CROP, CROP), bool)
    hands[4:28, 4:28] = True
    assert out["image"][0] != model.predict(None, frame(hands), {"steps": 2, "seed": 3})["image"][0]  # the mask is a condition
