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


def _seaborn_hls(i: int, n: int = 16) -> tuple[int, int, int]:
    """HumanSD's limb colour: seaborn's hls palette (h = 0.01, l = 0.6, s = 0.65), ``int(255 * c)``."""
    import colorsys

    return tuple(int(255 * c) for c in colorsys.hls_to_rgb((i / n + 0.01) % 1, 0.6, 0.65))


def test_humansd_draws_its_own_16_limbs_10_px_wide_with_round_ends_body_only():
    """HumanSD (scripts/pose2img.py draw_humansd_skeleton): COCO-17 limbs [0-1, 0-2, 1-3, 2-4, 3-5,
    4-6, 5-7, 6-8, 7-9, 8-10, 5-11, 6-12, 11-13, 12-14, 13-15, 14-16], colour i of seaborn's
    16-colour hls palette, cv2 lines of width 10, discs of radius 5 at both ends, on black."""
    from handdiff.data.skeleton import draw_humansd_pose

    keypoints = body(left_shoulder=(300, 100), right_shoulder=(200, 100), left_elbow=(300, 300), left_hip=(350, 400), right_hip=(200, 400))
    keypoints[kp.LEFT_HAND] = np.column_stack([np.linspace(400, 480, 21), np.full(21, 450.0), np.ones(21)])  # a hand: not drawn
    image = draw_humansd_pose(keypoints, 512)
    assert tuple(image[200, 300]) == _seaborn_hls(6)  # limb 6: left shoulder (5) -> left elbow (7)
    assert tuple(image[350, 300]) == (0, 0, 0)  # elbow-hip: not a limb
    assert tuple(image[100, 250]) == (0, 0, 0) and tuple(image[400, 275]) == (0, 0, 0)  # no shoulder-shoulder, no hip-hip
    assert tuple(image[200, 296]) == tuple(image[200, 304]) == _seaborn_hls(6)  # 10 px wide ...
    assert tuple(image[200, 293]) == tuple(image[200, 307]) == (0, 0, 0)
    assert tuple(image[304, 300]) == _seaborn_hls(6) and tuple(image[307, 300]) == (0, 0, 0)  # ... a disc of radius 5 at each end
    assert image[440:460, 380:500].max() == 0  # no hands
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    assert colours == {(0, 0, 0), _seaborn_hls(6), _seaborn_hls(10), _seaborn_hls(11)}  # limbs 10, 11 (shoulders -> hips) too, nothing else


def test_humansd_draws_only_keypoints_above_its_threshold():
    from handdiff.data.skeleton import draw_humansd_pose

    keypoints = body(left_shoulder=(300, 100), left_elbow=(300, 300))
    keypoints[kp.BODY_INDEX["left_elbow"], 2] = 0.04
    assert draw_humansd_pose(keypoints, 512).max() == 0  # its inference threshold is 0.05
    keypoints[kp.BODY_INDEX["left_elbow"], 2] = 0.06
    assert draw_humansd_pose(keypoints, 512).max() > 0
    assert draw_humansd_pose(keypoints, 512, threshold=0.1).max() == 0


def test_the_body_only_openpose_drawing_blends_limbs_over_points_and_draws_no_hands():
    """T2I-Adapter's (and ControlNet 1.0's) annotator: points first, then each limb blended at 0.6
    with cv2.addWeighted, no hands."""
    from handdiff.data.skeleton import draw_openpose_body

    keypoints = body(left_shoulder=(356, 100), right_shoulder=(156, 100), left_ear=(450, 400))
    keypoints[kp.LEFT_HAND] = np.column_stack([np.linspace(300, 380, 21), np.full(21, 300.0), np.ones(21)])
    image = draw_openpose_body(keypoints, 512)
    assert tuple(image[100, 206]) == (153, 0, 0)  # limb 0 blended over black: (255, 0, 0) x 0.6
    assert tuple(image[400, 450]) == (255, 0, 85)  # the left ear's disc, under no limb: its own colour
    assert tuple(image[100, 156]) == (255, 68, 0)  # the right shoulder's disc (255, 170, 0) under limb 0: 0.4 x disc + 0.6 x limb
    neck = 0.4 * (0.4 * np.array([255, 85, 0]) + 0.6 * np.array([255, 0, 0])) + 0.6 * np.array([255, 85, 0])  # under limbs 0 then 1
    assert np.abs(image[100, 256].astype(int) - neck).max() <= 1
    assert image[290:310, 290:390].max() == 0  # no hand
    assert draw_skeleton(keypoints, 512)[290:310, 290:390].max() > 0  # ControlNet 1.1's drawing has it
    assert draw_skeleton(keypoints, 512, hands=False)[290:310, 290:390].max() == 0
