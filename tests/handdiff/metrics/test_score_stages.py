"""The score job's stages on the tiny zoo: what goes into each per-image row."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from handdiff.assets.figures import person_keypoints
from handdiff.assets.tiny_zoo import SAM_ARCH, model_locations
from handdiff.data import keypoints as kp
from handdiff.data.images import encode_image
from handdiff.data.parts import read_parts, write_part
from handdiff.data.rle import encode_rle
from handdiff.data.work_rows import new_row
from handdiff.metrics.images import InceptionFeatures
from handdiff.metrics.score_stages import REAL_SCHEMA, SCORE_SCHEMA, SCORE_WORK_SCHEMA, ImageScores, RealFeatures, real_inputs, write_scores
from handdiff.models.loading import inception_weights

SIZE = 64


@pytest.fixture(scope="module")
def scores(tiny_zoo) -> ImageScores:
    zoo = model_locations(tiny_zoo)
    return ImageScores(zoo["clip"], zoo["sam"], SAM_ARCH, zoo["inception"])


def row(target: np.ndarray, image: np.ndarray, image_id: str = "i", output: str = "out") -> dict:
    real = [0.5] * 192  # the real side's features come with the row
    return new_row(
        SCORE_WORK_SCHEMA,
        image_id=image_id,
        method="m",
        size=SIZE,
        caption="a person",
        code_version="t",
        output=output,
        target=target.reshape(-1).tolist(),
        image_bytes=encode_image(image, "PNG"),
        real_features=real,
        real_image_features=real,
    )


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
        assert scored["real_features"] == [0.5] * 192  # passed through from the real side, not recomputed


def test_the_real_side_is_the_masked_real_image_and_the_whole_one_with_the_person_area(tiny_zoo, tmp_path):
    """A condition part -> real-side rows: the foreground keeps only the annotated person mask, the
    person area is the mask's; an undecodable real image and an id missing from its part are errors."""
    rng = np.random.default_rng(1)
    real = rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[8:40, 16:48] = True
    keypoints = [1.0] * 399
    conditions = [
        {
            "image_id": "good",
            "dataset": "d",
            "keypoints": keypoints,
            "real_image": encode_image(real, "PNG"),
            "person_mask": encode_rle(mask),
        },
        {"image_id": "corrupt", "dataset": "d", "keypoints": keypoints, "real_image": b"not an image", "person_mask": encode_rle(mask)},
    ]
    part = write_part(pa.Table.from_pylist(conditions), str(tmp_path / "conditions"))
    entries = [{"image_id": i, "part": part} for i in ("good", "corrupt", "absent")]
    batch = real_inputs(pa.table({"image_id": [e["image_id"] for e in entries], "entry": [json.dumps(e) for e in entries]}), "t")
    out = {r["image_id"]: r for r in RealFeatures(model_locations(tiny_zoo)["inception"])(batch).to_pylist()}
    features = InceptionFeatures(inception_weights(model_locations(tiny_zoo)["inception"]))
    np.testing.assert_allclose(
        out["good"]["real_features"], features([np.where(mask[..., None], real, 0).astype(np.uint8)])[0], rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(out["good"]["real_image_features"], features([real])[0], rtol=1e-4, atol=1e-5)
    assert out["good"]["person_area"] == mask.sum() and out["good"]["target"] == keypoints and out["good"]["status"] == "ok"
    assert (out["corrupt"]["status"], out["corrupt"]["error_stage"]) == ("error", "decode") and "real image" in out["corrupt"][
        "error_reason"
    ]
    assert (out["absent"]["status"], out["absent"]["error_stage"]) == ("error", "read")
    assert set(REAL_SCHEMA.names) <= set(out["good"])


def test_one_pass_writes_each_row_under_its_own_methods_output(tmp_path):
    body = np.zeros((133, 3), np.float32)
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    rows = [
        row(body, image, "a", str(tmp_path / "m1")),
        row(body, image, "a", str(tmp_path / "m2")),
        row(body, image, "b", str(tmp_path / "m2")),
    ]
    for r in rows:
        r.update(clip_score=1.0, fake_features=[0.0] * 192)
    counts = write_scores(pa.Table.from_pylist(rows, schema=SCORE_WORK_SCHEMA)).to_pylist()
    assert sum(c["ok"] for c in counts) == 3
    assert read_parts(str(tmp_path / "m1" / "records"), schema=SCORE_SCHEMA).column("image_id").to_pylist() == ["a"]
    assert sorted(read_parts(str(tmp_path / "m2" / "records"), schema=SCORE_SCHEMA).column("image_id").to_pylist()) == ["a", "b"]
