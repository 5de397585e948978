"""The skeleton renderer against OpenPose's documented colours, pixel by pixel."""

from __future__ import annotations

import numpy as np

from handdiff.data import keypoints as kp
from handdiff.data.skeleton import draw_skeleton


def body(**points: tuple[float, float]) -> np.ndarray:
    keypoints = kp.empty_keypoints()
    for name, (x, y) in points.items():
        keypoints[kp.BODY_INDEX[name]] = (x, y, 1.0)
    return keypoints


def test_openpose18_has_the_neck_between_the_shoulders_and_openpose_order():
    keypoints = body(nose=(50, 20), left_shoulder=(80, 60), right_shoulder=(20, 60), left_ear=(60, 18))
    op = kp.to_openpose18(keypoints)
    assert op.shape == (18, 3)
    assert tuple(op[0]) == (50, 20, 1) and tuple(op[1]) == (50, 60, 1)  # nose, neck
    assert tuple(op[2, :2]) == (20, 60) and tuple(op[5, :2]) == (80, 60)  # right shoulder 2, left shoulder 5
    assert tuple(op[17, :2]) == (60, 18) and op[16, 2] == 0  # left ear 17; right ear absent
    assert kp.to_openpose18(body(left_shoulder=(80, 60)))[1, 2] == 0  # one shoulder: no neck


def test_limbs_and_points_carry_openpose_colours():
    # neck (256, 100) -> right shoulder (156, 100): limb 0, red at 0.6; the shoulder point in orange (255, 85, 0)
    image = draw_skeleton(body(left_shoulder=(356, 100), right_shoulder=(156, 100)), 512)
    assert tuple(image[100, 206]) == (153, 0, 0)  # limb 0 (neck-right shoulder): (255, 0, 0) x 0.6
    assert tuple(image[100, 306]) == (153, 51, 0)  # limb 1 (neck-left shoulder): (255, 85, 0) x 0.6
    assert tuple(image[100, 156]) == (255, 170, 0)  # point 2 (right shoulder)
    assert tuple(image[100, 256]) == (255, 85, 0)  # point 1 (neck)
    assert tuple(image[100, 356]) == (85, 255, 0)  # point 5 (left shoulder)
    assert tuple(image[300, 300]) == (0, 0, 0)  # background stays black
    assert tuple(image[110, 206]) == (0, 0, 0)  # the limb is an ellipse of half-width 4


def test_hand_bones_follow_the_hsv_wheel_and_points_are_blue():
    keypoints = kp.empty_keypoints()
    hand = kp.hand_slice("right")
    keypoints[hand.start] = (100, 400, 1)  # wrist
    keypoints[hand.start + 1] = (200, 400, 1)  # thumb base: bone 0 (wrist-thumb1), hue 0 = red
    keypoints[hand.start + 5] = (100, 200, 1)  # index base: bone 4, hue 4/20 -> (204, 255, 0)
    image = draw_skeleton(keypoints, 512)
    assert tuple(image[400, 150]) == (255, 0, 0)
    assert tuple(image[300, 100]) == (204, 255, 0)
    assert tuple(image[400, 100]) == (0, 0, 255) and tuple(image[400, 200]) == (0, 0, 255)
    assert image[:, 300:].max() == 0


def test_sizes_scale_with_the_image():
    keypoints = body(left_shoulder=(89, 25), right_shoulder=(39, 25))
    small = draw_skeleton(keypoints, 128)
    assert tuple(small[25, 51]) == (153, 0, 0) and tuple(small[28, 51]) == (0, 0, 0)  # half-width 1 at 128 px
