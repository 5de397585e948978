"""The score job's stages on the tiny zoo: what goes into each per-image row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from handdiff.assets.figures import person_keypoints
from handdiff.assets.tiny_zoo import SAM_ARCH, model_locations
from handdiff.data import keypoints as kp
from handdiff.data.images import encode_image
from handdiff.data.rle import encode_rle
from handdiff.data.work_rows import new_row
from handdiff.metrics.images import InceptionFeatures
from handdiff.metrics.score_stages import SCORE_WORK_SCHEMA, ImageScores
from handdiff.models.loading import inception_weights

SIZE = 64


@pytest.fixture(scope="module")
def scores(tiny_zoo) -> ImageScores:
    zoo = model_locations(tiny_zoo)
    return ImageScores(zoo["clip"], zoo["sam"], SAM_ARCH, zoo["inception"])


def row(target: np.ndarray, image: np.ndarray) -> dict:
    real = np.full((SIZE, SIZE, 3), 200, np.uint8)
    return new_row(SCORE_WORK_SCHEMA, image_id="i", method="m", size=SIZE, caption="a person", code_version="t",
                   target=target.reshape(-1).tolist(), image_bytes=encode_image(image, "PNG"), real_bytes=encode_image(real, "PNG"),
                   real_mask=encode_rle(np.ones((SIZE, SIZE), bool)))  # fmt: skip


def test_an_image_without_a_person_mask_is_an_empty_foreground_and_whole_images_get_their_own_features(scores, tiny_zoo):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    body = person_keypoints(32, 4, 56, {"left": True, "right": True}, {"left": "palm", "right": "palm"}, rng)
    no_body = body.copy()
    no_body[: kp.HANDS.start] = 0  # nothing to prompt SAM with: no person mask
    out = scores(pa.Table.from_pylist([row(no_body, image), row(body, image)], schema=SCORE_WORK_SCHEMA)).to_pylist()
    features = InceptionFeatures(inception_weights(model_locations(tiny_zoo)["inception"]))
    black, whole = features([np.zeros((SIZE, SIZE, 3), np.uint8)])[0], features([image])[0]
    assert out[0]["person_mask"] is None
    np.testing.assert_allclose(out[0]["fake_features"], black, rtol=1e-4, atol=1e-5)  # scored as no person, not as the image
    assert not np.allclose(out[0]["fake_features"], whole, atol=1e-3)
    for scored in out:
        np.testing.assert_allclose(scored["fake_image_features"], whole, rtol=1e-4, atol=1e-5)  # Table II's FID: whole images
        assert len(scored["real_image_features"]) == 192
