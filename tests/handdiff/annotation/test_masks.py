from __future__ import annotations

import numpy as np
import pytest

from handdiff.annotation.masks import dilate, expand_box, hand_prompt, person_prompt
from handdiff.data import keypoints as kp


def test_dilation_is_a_5x5_square():
    mask = np.zeros((11, 11), bool)
    mask[5, 5] = True
    grown = dilate(mask, 5)
    assert grown.sum() == 25 and grown[3:8, 3:8].all()
    assert np.array_equal(dilate(mask, 1), mask)


def test_prompts():
    assert np.allclose(expand_box((10, 10, 20, 10), 0.1, 100, 100), [8, 8, 32, 22])
    assert np.allclose(expand_box((0, 0, 20, 10), 0.5, 25, 100), [0, 0, 25, 20])  # clipped to the image
    hand = np.zeros((21, 3))
    assert hand_prompt(hand, 100, 100, 0.1) is None
    hand[:5] = [[10, 10, 1], [20, 20, 1], [30, 10, 1], [20, 30, 1], [99, 99, 0]]
    prompt = hand_prompt(hand, 100, 100, 0.0)
    assert len(prompt.points) == 4 and np.allclose(prompt.box, [10, 10, 30, 30])
    keypoints = kp.empty_keypoints()
    assert person_prompt(keypoints, 100, 100, 0.1) is None
    keypoints[kp.BODY_INDEX["nose"]] = (50, 20, 1)
    keypoints[kp.BODY_INDEX["left_ankle"]] = (60, 90, 1)
    prompt = person_prompt(keypoints, 100, 100, 0.0)
    assert len(prompt.points) == 0 and np.allclose(prompt.box, [50, 20, 60, 90])


@pytest.mark.parametrize("kernel", [3, 5])
def test_dilate_only_grows(kernel):
    mask = np.random.default_rng(1).random((40, 40)) > 0.9
    grown = dilate(mask, kernel)
    assert (grown | mask).sum() == grown.sum() and grown.sum() > mask.sum()
