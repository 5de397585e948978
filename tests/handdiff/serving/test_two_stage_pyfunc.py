"""The two-stage pyfunc (handdiff.serving.two_stage_pyfunc) on the two saved tiny stages: images
of the asked size, the hands it crops, and each row's own seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from handdiff.assets.figures import person_keypoints
from handdiff.data.images import decode_image
from handdiff.inference.settings import TwoStageSettings
from handdiff.serving.two_stage_pyfunc import PARAMS, TwoStageModel
from tests.handdiff.serving.conftest import loaded


def test_each_row_is_drawn_at_the_asked_size_from_its_own_seed(saved):
    assert set(PARAMS) == {"size", *TwoStageSettings.model_fields}  # every inference setting is a param
    model = loaded(TwoStageModel(), hand=saved.hand, body=saved.body)
    keypoints = person_keypoints(32, 4, 56, {"left": True, "right": True}, {"left": "palm", "right": "palm"}, np.random.default_rng(0))
    rows = pd.DataFrame({"keypoints": [keypoints.reshape(-1).tolist()] * 3, "caption": ["a person"] * 3, "seed": [5, 5, 6]})
    params = {"size": 64, "hand_steps": 2, "body_steps": 3}
    out = model.predict(None, rows, params)
    first, same_seed, other_seed = [decode_image(i).astype(int) for i in out["image"]]
    assert first.shape == (64, 64, 3)
    # a row's seed, not its place in the batch (up to a level of rounding between batch positions)
    assert np.abs(first - same_seed).max() <= 1 and np.abs(first - other_seed).max() > 50
    alone = decode_image(model.predict(None, rows[:1], params)["image"][0]).astype(int)
    assert np.abs(first - alone).max() <= 1
    assert out["hands"].tolist() == [2, 2, 2]  # both raised hands cropped
