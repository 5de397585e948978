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
ASTRONAUT = {"right_eye": (204, 102), "left_eye": (246, 103), "nose": (225, 128), "right_shoulder": (108, 245), "left_shoulder": (318, 258)}
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
            seen = got[:, 2] > 0  # a point past the image's edge is absent
            error = np.linalg.norm(got[seen, :2] - gt[seen, :2], axis=1).mean()
            assert error < 0.4 * size, (record["image_id"], side, error, size)  # seen: 6% to 26% of the hand's size
            if truth[kp.hand_slice(other), 2].min() > 0:
                swapped = np.linalg.norm(got[seen, :2] - truth[kp.hand_slice(other)][seen, :2], axis=1).mean()
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
    vis = rng.uniform(0.5, 1, 33)  # all seen: the presence rule has its own test
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


def test_a_landmark_is_present_only_when_seen_and_inside_the_image():
    pose = np.full((33, 2), 0.5)
    vis = np.full(33, 0.9)
    vis[POSE_TO_BODY[13]] = 0.49  # left knee: under Mediapipe's drawing threshold
    vis[POSE_TO_BODY[14]] = 0.0  # right knee: a visibility of exactly 0 is not "no visibility field"
    pose[POSE_TO_BODY[15]] = (0.5, 1.4)  # left ankle: below the frame, confidently guessed
    pose[POSE_TO_BODY[16]] = (-0.01, 0.5)  # right ankle: just left of it
    left = np.full((21, 2), 0.3)
    left[20] = (1.02, 0.3)  # a fingertip past the right edge
    out = holistic_to_wholebody(_Result(_landmarks(pose, visibility=vis), left=_landmarks(left)), 200, 100)
    for name in ("left_knee", "right_knee", "left_ankle", "right_ankle"):
        assert out[kp.BODY_INDEX[name]].tolist() == [0, 0, 0], name  # absent: no score, no position
    assert out[kp.BODY_INDEX["nose"], 2] == pytest.approx(0.9)
    assert out[kp.LEFT_HAND, 2].sum() == 20 and out[kp.LEFT_HAND.start + 20].tolist() == [0, 0, 0]
    looser = holistic_to_wholebody(_Result(_landmarks(pose, visibility=vis)), 200, 100, min_visibility=0.4)
    assert looser[kp.BODY_INDEX["left_knee"], 2] == pytest.approx(0.49)  # the threshold is a setting
    assert looser[kp.BODY_INDEX["right_knee"], 2] == 0 and looser[kp.BODY_INDEX["left_ankle"], 2] == 0


def _grace_hopper() -> np.ndarray:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_real_upper_body_photos_have_no_present_point_outside_the_image(holistic, photo):
    """Both are head-and-shoulders photos: Mediapipe Pose still places hips, knees, ankles and
    feet (the astronaut's down to y = 985 on a 512-px photo, visibilities 0.006-0.056)."""
    from handdiff.annotation.masks import person_prompt
    from handdiff.data.framing import person_square

    image = skimage.data.astronaut() if photo == "astronaut" else _grace_hopper()
    height, width = image.shape[:2]
    keypoints = holistic(image)
    present = keypoints[keypoints[:, 2] > 0]
    assert len(present) > 20  # the face and shoulders are there
    assert (present[:, 0] >= 0).all() and (present[:, 0] < width).all() and (present[:, 1] >= 0).all() and (present[:, 1] < height).all()
    for name in ("left_knee", "right_knee", "left_ankle", "right_ankle"):
        assert keypoints[kp.BODY_INDEX[name], 2] == 0, name
    assert keypoints[kp.FEET, 2].max() == 0
    box = kp.hand_box(keypoints[:, :2], keypoints[:, 2])  # the person box annotation writes
    assert box[1] + box[3] <= height and box[0] + box[2] <= width
    assert person_prompt(keypoints, width, height, 0.1).box[3] <= height
    # the framing every set uses keeps the person's size: the square fits in the photo
    x0, y0, side = person_square(list(box), 0.1, width, height)
    assert side <= max(width, height), side


def test_the_hand_landmarker_handrefiner_uses_finds_the_drawn_hands(sample_data):
    """HandRefiner repairs the hands Mediapipe finds in the image: on the sample figures whose
    hands Holistic finds, the hand landmarker finds hands within the drawn ones."""
    from handdiff.annotation.wholebody import HandLandmarks

    finder = HandLandmarks(max_hands=2, min_detection_confidence=0.6)
    found = 0
    for record in open_reader(**sample_sources(sample_data)["hagrid"]):
        if is_error(record) or record["keypoints"] is None:
            continue
        truth = keypoints_from_column(record["keypoints"])
        try:
            image = load_image(record["image_uri"])
        except Exception:
            continue  # the sample's deliberately broken files
        for hand in finder(image):
            assert hand.shape == (21, 3)
            near = min(
                np.linalg.norm(hand[hand[:, 2] > 0, :2].mean(0) - truth[s][truth[s][:, 2] > 0, :2].mean(0))
                for s in (kp.LEFT_HAND, kp.RIGHT_HAND)
                if truth[s][:, 2].max() > 0
            )
            assert near < 0.1 * max(image.shape[:2])  # on one of the drawn hands
            found += 1
    assert found >= 5
