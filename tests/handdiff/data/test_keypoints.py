from __future__ import annotations

import numpy as np
import pytest

from handdiff.data import keypoints as kp


def test_layout_adds_up_to_coco_wholebody():
    sizes = [s.stop - s.start for s in (kp.BODY, kp.FEET, kp.FACE, kp.LEFT_HAND, kp.RIGHT_HAND)]
    assert sizes == [17, 6, 68, 21, 21] and sum(sizes) == kp.NUM_KEYPOINTS == 133
    assert kp.HAND_NAMES[:6] == ("wrist", "thumb1", "thumb2", "thumb3", "thumb4", "index1")
    assert kp.finger_joints("middle") == (0, 9, 10, 11, 12)
    with pytest.raises(ValueError):
        kp.hand_slice("middle")


def test_interhand_order_is_reversed_per_finger_with_the_wrist_last():
    # InterHand2.6M names, in its own order (tip first, wrist last)
    names = [f"{f}{j}" for f in kp.FINGERS for j in (4, 3, 2, 1)] + ["wrist"]
    assert [names[i] for i in kp.INTERHAND_TO_HAND] == list(kp.HAND_NAMES)


def test_reinterhand_drops_metacarpal_bases_and_the_forearm():
    picked = [kp.REINTERHAND_JOINTS[i] for i in kp.REINTERHAND_TO_HAND]
    assert picked[0] == "Wrist" and picked[1:5] == ["Thumb_1", "Thumb_2", "Thumb_3", "Thumb_4"]
    assert picked[-4:] == ["Pinky_1", "Pinky_2", "Pinky_3", "Pinky_4"]
    assert not {"Thumb_0", "Pinky_0", "Forearm_Stub"} & set(picked)


def test_hand_box_uses_only_scored_points():
    points = np.array([[10, 20], [30, 5], [1000, 1000]], float)
    assert kp.hand_box(points, np.array([1, 1, 0])) == (10, 5, 20, 15)
    assert kp.hand_box(points, np.zeros(3)) is None
