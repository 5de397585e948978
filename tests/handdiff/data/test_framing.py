from __future__ import annotations

import numpy as np

from handdiff.data.framing import crop_square, person_square, points_to_square


def test_person_square_keeps_the_margin_and_moves_inside_the_image():
    x0, y0, side = person_square([100, 50, 40, 100], 0.1, 400, 300)
    assert side == 120 and (x0, y0) == (60, 40)  # centred: 100 * 1.2
    x0, y0, side = person_square([0, 0, 40, 100], 0.1, 400, 300)
    assert side == 120 and (x0, y0) == (0, 0)  # would start at (-40, -10): shifted in, not shrunk
    x0, y0, side = person_square([0, 0, 40, 380], 0.1, 400, 300)
    assert side == 456 and x0 == -208 and y0 == 190 - 228  # larger than the image: centred, padded


def test_points_follow_the_pixels_and_points_outside_score_zero():
    image = np.zeros((100, 100), np.uint8)
    image[30, 70] = 255
    points = np.array([[70.5, 30.5, 0.9], [5.0, 5.0, 1.0], [60.0, 40.0, 0.0]], np.float32)
    crop = crop_square(image, 50, 20, 40, 80, interpolation=0)
    moved = points_to_square(points, 50, 20, 40, 80)
    assert crop[int(moved[0, 1]), int(moved[0, 0])] == 255 and moved[0, 2] == np.float32(0.9)
    assert moved[1, 2] == 0 and moved[2, 2] == 0  # outside; absent
    padded = crop_square(image, -10, -10, 40, 40, fill=127)
    assert (padded[:10] == 127).all()
