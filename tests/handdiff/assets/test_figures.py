"""The synthetic people and hands (handdiff.assets.figures): poses from their parameters, and
pixels where the keypoints say."""

from __future__ import annotations

import numpy as np
import pytest

from handdiff.assets.figures import (
    GESTURE_CURLS,
    SKIN_TONES,
    draw_hand,
    hand_model,
    mark_outside,
    person_keypoints,
    place_hand_2d,
    random_rotation,
)
from handdiff.data import keypoints as kp

TIPS = [4, 8, 12, 16, 20]  # thumb..pinky tips in the canonical hand order
BASES = [1, 5, 9, 13, 17]


def test_a_curled_finger_folds_toward_the_palm_and_an_open_one_points_away():
    palm, fist = hand_model(GESTURE_CURLS["palm"]), hand_model(GESTURE_CURLS["fist"])
    assert palm.shape == (21, 3) and np.allclose(palm[0], 0)  # the wrist at the origin
    reach = {name: np.linalg.norm(joints[TIPS, :2], axis=1) for name, joints in (("palm", palm), ("fist", fist))}
    assert (reach["palm"][1:] > np.linalg.norm(palm[BASES[1:], :2], axis=1)).all()  # open fingers: tips beyond their bases
    assert (reach["fist"][1:] < reach["palm"][1:] - 0.2).all()  # folded: well short of the open tips
    assert (palm[:, 2] == 0).all() and (fist[TIPS[1:], 2] < 0).all()  # folding moves toward the palm's side (-z)
    peace = hand_model(GESTURE_CURLS["peace"])
    assert np.allclose(peace[5:13], palm[5:13]) and np.allclose(peace[13:21], fist[13:21])  # index and middle open, ring and pinky folded


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_hand_seen_palm_on_has_its_thumb_on_the_side_the_hand_is(side):
    local = hand_model(GESTURE_CURLS["palm"])
    wrist = np.array([100.0, 200.0])
    points = place_hand_2d(local, wrist, np.array([0.0, -3.0]), 50.0, side)  # fingers up the image
    assert np.allclose(points[0], wrist)
    assert np.allclose(points[:, 1] - wrist[1], -50.0 * local[:, 1])  # hand length in pixels along the direction
    thumb_x = points[4, 0] - wrist[0]
    assert thumb_x > 0 if side == "right" else thumb_x < 0  # a right hand palm-on: thumb on the image's right


def test_a_person_stands_where_asked_with_the_hands_given():
    rng = np.random.default_rng(0)
    person = person_keypoints(200.0, 20.0, 400.0, {"left": True, "right": False}, {"left": "fist", "right": "palm"}, rng)
    assert person.shape == (133, 3) and (person[:, 2] == 1).all()
    nose, ankle = person[kp.BODY_INDEX["nose"], :2], person[kp.BODY_INDEX["left_ankle"], :2]
    assert nose[0] == pytest.approx(200.0) and 20 < nose[1] < ankle[1] < 420  # head at the top, feet within the height
    left_wrist, left_elbow = person[kp.BODY_INDEX["left_wrist"], :2], person[kp.BODY_INDEX["left_elbow"], :2]
    right_wrist, right_elbow = person[kp.BODY_INDEX["right_wrist"], :2], person[kp.BODY_INDEX["right_elbow"], :2]
    assert left_wrist[1] < left_elbow[1] and right_wrist[1] > right_elbow[1]  # raised left forearm, lowered right one
    for side, gesture in (("left", "fist"), ("right", "palm")):
        hand = person[kp.hand_slice(side), :2]
        assert np.allclose(hand[0], person[kp.BODY_INDEX[f"{side}_wrist"], :2])  # the hand starts at the body's wrist
        spread = np.linalg.norm(hand[TIPS[1:]] - hand[0], axis=1).mean() / np.linalg.norm(hand[9] - hand[0])
        assert spread < 1.0 if gesture == "fist" else spread > 1.5, (side, spread)  # tips around the knuckles vs well beyond them


def test_points_outside_the_image_lose_their_score_and_the_input_stays():
    points = np.array([[5.0, 5.0, 1.0], [-1.0, 5.0, 1.0], [5.0, 10.0, 1.0], [9.9, 9.9, 0.7]])
    out = mark_outside(points, 10, 10)
    assert out[:, 2].tolist() == [1.0, 0.0, 0.0, 0.7] and (points[:, 2] != 0).all()


def test_every_hand_keypoint_is_on_the_hands_pixels():
    image, mask = np.zeros((200, 200, 3), np.uint8), np.zeros((200, 200), np.uint8)
    points = place_hand_2d(hand_model(GESTURE_CURLS["peace"]), np.array([100.0, 170.0]), np.array([0.0, -1.0]), 120.0, "right")
    draw_hand(image, points, SKIN_TONES[2], mask)
    rows, cols = np.round(points[:, 1]).astype(int), np.round(points[:, 0]).astype(int)
    assert (mask[rows, cols] == 255).all()
    assert (image[rows, cols] > 0).any(axis=1).all() and (image[mask == 0] == 0).all()  # painted where the mask is, nowhere else


def test_random_rotations_are_rotations_within_the_angle():
    rng = np.random.default_rng(1)
    for _ in range(20):
        r = random_rotation(rng, max_angle=0.3)
        assert np.allclose(r @ r.T, np.eye(3)) and np.linalg.det(r) == pytest.approx(1.0)
        assert np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1)) <= 0.3 + 1e-9
