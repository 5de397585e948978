from __future__ import annotations

import numpy as np

from handdiff.data import keypoints as kp
from handdiff.viz import contact_sheet, draw_keypoints


def test_draw_keypoints_draws_only_scored_limbs():
    image = np.zeros((100, 100, 3), np.uint8)
    keypoints = kp.empty_keypoints()
    keypoints[5] = (10, 10, 1)  # left shoulder
    keypoints[7] = (10, 90, 1)  # left elbow: the limb between them is drawn
    keypoints[6] = (90, 10, 1)  # right shoulder alone: its limbs have no other end
    out = draw_keypoints(image, keypoints, thickness=3)
    assert out[50, 10].min() > 200
    assert out[50, 90].tolist() == [0, 0, 0]
    assert image.sum() == 0  # the input is left alone


def test_contact_sheet_grid_and_letterboxing():
    images = [np.full((50, 100, 3), 200, np.uint8)] * 7
    sheet = contact_sheet(images, columns=3, cell=40)
    assert sheet.shape == (3 * 40, 3 * 40, 3)
    assert sheet[20, 20].tolist() == [200, 200, 200]  # tile centre
    assert sheet[2, 20].tolist() == [32, 32, 32]  # letterbox band above a wide image
    assert sheet[100, 100].tolist() == [32, 32, 32]  # empty cell
