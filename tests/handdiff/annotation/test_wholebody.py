"""Mediapipe Holistic -> COCO-WholeBody 133, pinned on real photos and on synthetic
figures whose hands are known exactly."""

from __future__ import annotations

import matplotlib.cbook
import numpy as np
import pytest
import skimage.data
from mediapipe.framework.formats import landmark_pb2
from PIL import Image

from handdiff.annotation.wholebody import FACE_MESH_TO_DLIB68, POSE_TO_BODY, FaceCounter, HolisticKeypoints, holistic_to_wholebody
from handdiff.assets.sample_data import read_manifest, sample_sources
from handdiff.data import keypoints as kp
from handdiff.data.images import load_image
from handdiff.data.readers import open_reader
from handdiff.data.records import is_error, keypoints_from_column

# Measured by eye on scikit-image's astronaut.png (512 x 512) on a 10-pixel grid at 5x
# zoom: pupils, nose tip; shoulder joints under the bulky suit are less certain.
ASTRONAUT = {"right_eye": (204, 102), "left_eye": (246, 103), "nose": (225, 128),
             "right_shoulder": (108, 245), "left_shoulder": (318, 258)}  # fmt: skip
FACE_TOLERANCE, SHOULDER_TOLERANCE = 12.0, 20.0  # px: ~2% and ~4% of the image


@pytest.fixture(scope="module")
def holistic():
    model = HolisticKeypoints()
    yield model
    model.close()


def test_astronaut_landmarks_land_where_they_are_in_the_photo(holistic):
    keypoints = holistic(skimage.data.astronaut())
    for name, (x, y) in ASTRONAUT.items():
        point = keypoints[kp.BODY_INDEX[name]]
        tolerance = SHOULDER_TOLERANCE if "shoulder" in name else FACE_TOLERANCE
        assert point[2] > 0.5, name
        assert np.hypot(point[0] - x, point[1] - y) < tolerance, (name, point[:2], (x, y))
    # the person faces the camera: her left is the image's right, and nothing is swapped
    b = {n: keypoints[kp.BODY_INDEX[n]] for n in kp.BODY_NAMES}
    assert b["right_eye"][0] < b["nose"][0] < b["left_eye"][0]
    assert b["right_shoulder"][0] < b["left_shoulder"][0]


def test_astronaut_face_points_follow_the_dlib_layout(holistic):
    face = holistic(skimage.data.astronaut())[kp.FACE]
    assert face[:, 2].min() == 1
    xy = face[:, :2]
    np.testing.assert_allclose(xy[36:42].mean(0), ASTRONAUT["right_eye"], atol=8)  # dlib 36-41: the person's right eye
    np.testing.assert_allclose(xy[42:48].mean(0), ASTRONAUT["left_eye"], atol=8)
    np.testing.assert_allclose(xy[30], ASTRONAUT["nose"], atol=8)  # nose tip
    jaw = xy[0:17]
    assert jaw[0, 0] < jaw[8, 0] < jaw[16, 0] and jaw[8, 1] == jaw[:, 1].max()  # ear to ear, chin lowest
    assert xy[17:22, 0].mean() < xy[22:27, 0].mean()  # right brow on the image's left
    assert xy[48, 0] < xy[51, 0] < xy[54, 0] and xy[51, 1] < xy[57, 1]  # mouth corners; top lip above bottom
    assert xy[27, 1] < xy[30, 1]  # nose bridge runs down


def test_grace_hopper_is_not_mirrored(holistic):
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        image = np.asarray(Image.open(f).convert("RGB"))
    b = {n: holistic(image)[kp.BODY_INDEX[n]] for n in ("left_eye", "right_eye", "nose")}
    assert b["right_eye"][0] < b["nose"][0] < b["left_eye"][0]


def test_holistic_hands_are_the_persons_own_and_land_on_the_drawn_hands(holistic, sample_data):
    """Synthetic figures carry exact hand keypoints: Holistic's left hand must be the
    person's left (not mirrored), within a fraction of the hand's size."""
    bad = {e["image_id"] for e in read_manifest(sample_data)["bad_entries"]}
    found = 0
    for record in open_reader(**sample_sources(sample_data)["hagrid"]):
        if is_error(record) or record["image_id"] in bad or record["keypoints"] is None:
            continue
        truth = keypoints_from_column(record["keypoints"])
        detected = holistic(load_image(record["image_uri"]))
        for side in kp.SIDES:
            other = "left" if side == "right" else "right"
            gt, got = truth[kp.hand_slice(side)], detected[kp.hand_slice(side)]
            if gt[:, 2].min() == 0 or got[:, 2].max() == 0:
                continue
            size = np.ptp(gt[:, :2], axis=0).max()  # the hand's extent, px
            error = np.linalg.norm(got[:, :2] - gt[:, :2], axis=1).mean()
            assert error < 0.4 * size, (record["image_id"], side, error, size)  # seen: 6% to 26% of the hand's size
            if truth[kp.hand_slice(other), 2].min() > 0:
                swapped = np.linalg.norm(got[:, :2] - truth[kp.hand_slice(other)][:, :2], axis=1).mean()
                assert error < swapped / 3
            found += 1
    assert found >= 10  # Holistic finds most drawn hands


def test_face_counter_counts_people(sample_data):
    counter = FaceCounter()
    records = {r["caption"]: r for r in open_reader(**sample_sources(sample_data)["laion_human"]) if not is_error(r)}
    assert counter(load_image(records["two friends waving"]["image_uri"])) == 2
    assert counter(load_image(records["an empty room"]["image_uri"])) == 0
    assert counter(skimage.data.astronaut()) == 1


def _landmarks(points, cls=landmark_pb2.NormalizedLandmarkList, visibility=None):
    out = cls()
    for i, (x, y) in enumerate(points):
        lm = out.landmark.add(x=x, y=y, z=0.0)
        if visibility is not None:
            lm.visibility = visibility[i]
    return out


class _Result:
    def __init__(self, pose=None, face=None, left=None, right=None):
        self.pose_landmarks, self.face_landmarks, self.left_hand_landmarks, self.right_hand_landmarks = pose, face, left, right


def test_index_tables_map_each_part_to_its_slots():
    rng = np.random.default_rng(0)
    pose, face, left, right = (rng.uniform(0, 1, (n, 2)) for n in (33, 468, 21, 21))
    vis = rng.uniform(0.2, 1, 33)
    out = holistic_to_wholebody(_Result(_landmarks(pose, visibility=vis), _landmarks(face), _landmarks(left), _landmarks(right)), 200, 100)
    np.testing.assert_allclose(out[kp.BODY, :2], pose[list(POSE_TO_BODY)] * [200, 100], rtol=1e-5)
    np.testing.assert_allclose(out[kp.BODY, 2], vis[list(POSE_TO_BODY)], rtol=1e-5)
    np.testing.assert_allclose(out[17, :2], pose[31] * [200, 100], rtol=1e-5)  # left foot index -> left big toe
    np.testing.assert_allclose(out[19, :2], pose[29] * [200, 100], rtol=1e-5)  # left heel
    assert out[18, 2] == 0 and out[21, 2] == 0  # small toes: no counterpart
    np.testing.assert_allclose(out[kp.FACE.start + 3, :2], face[[132, 58]].mean(0) * [200, 100], rtol=1e-5)  # an averaged pair
    np.testing.assert_allclose(out[kp.LEFT_HAND, :2], left * [200, 100], rtol=1e-5)
    np.testing.assert_allclose(out[kp.RIGHT_HAND, :2], right * [200, 100], rtol=1e-5)
    assert len(FACE_MESH_TO_DLIB68) == 68 and all(0 <= i < 468 for ids in FACE_MESH_TO_DLIB68 for i in ids)
    empty = holistic_to_wholebody(_Result(), 10, 10)
    assert empty[:, 2].sum() == 0
