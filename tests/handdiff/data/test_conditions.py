"""Conditions (handdiff.data.conditions): a person framed from an annotated record, a seed per
image from its id alone, and the rows that cannot become conditions reported as errors."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from handdiff.assets.figures import person_keypoints
from handdiff.data import keypoints as kp
from handdiff.data.conditions import condition_from_record, image_seed


def test_an_images_seed_is_a_hash_of_its_id_and_the_sets_seed_in_every_process():
    expected = (int(hashlib.sha1(b"hagrid/like/1").hexdigest()[:8], 16) + 5) % 2**31
    assert image_seed("hagrid/like/1", 5) == expected
    code = "from handdiff.data.conditions import image_seed; print(image_seed('hagrid/like/1', 5))"
    for hash_seed in ("0", "1"):  # not Python's per-process hash()
        out = subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": hash_seed}, capture_output=True, text=True, check=True)
        assert int(out.stdout) == expected
    assert image_seed("hagrid/like/2", 5) != expected and 0 <= image_seed("x" * 100, 2**31 - 1) < 2**31


def record(**changes) -> dict:
    keypoints = person_keypoints(200, 100, 300, {"left": True, "right": True}, {"left": "palm", "right": "fist"}, np.random.default_rng(0))
    present = keypoints[keypoints[:, 2] > 0, :2]
    (x0, y0), (x1, y1) = present.min(0), present.max(0)
    base = {
        "image_id": "hagrid/a",
        "dataset": "hagrid",
        "gesture": "palm",
        "caption": "a person",
        "width": 400,
        "height": 500,
        "keypoints": keypoints.reshape(-1).tolist(),
        "person_box": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
    }
    return {**base, **changes}


def test_a_record_becomes_a_square_around_its_person_with_its_keypoints_in_that_square():
    row = condition_from_record(record(), size=64, margin=0.1, seed=9)
    x0, y0, side = row["box"]
    source = np.asarray(record()["keypoints"], np.float32).reshape(kp.NUM_KEYPOINTS, 3)
    points = np.asarray(row["keypoints"], np.float32).reshape(kp.NUM_KEYPOINTS, 3)
    here = source[:, 2] > 0
    # on the pixel grid the crop itself is cut on (integer origin and side, as crop_square cuts it)
    np.testing.assert_allclose(points[here, :2], (source[here, :2] - np.floor([x0, y0])) * 64 / round(side), atol=1e-3)
    assert (points[here, :2] >= 0).all() and (points[here, :2] < 64).all() and (points[~here] == 0).all()
    assert (row["size"], row["seed"], row["caption"], row["gesture"]) == (64, 9, "a person", "palm")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({"person_box": None}, "no body keypoints"), ({"caption": ""}, "no caption"), ({"keypoints": [1.0, 2.0]}, "no body keypoints")],
)
def test_a_record_without_a_body_or_caption_is_refused_with_the_reason(changes, reason):
    with pytest.raises(ValueError, match=reason):
        condition_from_record(record(**changes), size=64, margin=0.1, seed=0)
