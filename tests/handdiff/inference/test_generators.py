"""The generator interface: one image per condition in their order, one batch per output size,
and stage 1's strip of crops over their mask probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np

from handdiff.inference.generators import Generated, Generator, by_size, stage1_strip


class SizeEcho(Generator):
    """Each image filled with its condition's seed; records the batches it was given."""

    method = "echo"

    def __init__(self):
        self.batches: list[tuple[int, list[int]]] = []

    def generate_batch(self, conditions: list[dict], size: int) -> list[Generated]:
        self.batches.append((size, [c["seed"] for c in conditions]))
        return [Generated(np.full((size, size, 3), c["seed"], np.uint8)) for c in conditions]

    def describe(self) -> dict[str, Any]:
        return {}


def test_one_batch_per_size_and_the_images_come_back_in_the_conditions_order():
    conditions = [{"size": s, "seed": i} for i, s in enumerate([64, 32, 64, 32, 128])]
    echo = SizeEcho()
    out = echo.generate(conditions)
    assert [(g.image.shape[0], int(g.image[0, 0, 0])) for g in out] == [(64, 0), (32, 1), (64, 2), (32, 3), (128, 4)]
    assert echo.batches == [(32, [1, 3]), (64, [0, 2]), (128, [4])]
    assert by_size([{"size": "64"}, {"size": 32}]) == [(32, [1]), (64, [0])]


def test_the_strip_shows_each_crop_over_its_mask_probabilities_in_grey():
    crops = [np.full((4, 4, 3), 9, np.uint8), np.full((4, 4, 3), 200, np.uint8)]
    probabilities = [np.full((4, 4), 0.5, np.float32), np.zeros((4, 4), np.float32)]
    probabilities[1][0, 0] = 1.5  # above 1: white, not wrapped
    strip = stage1_strip(crops, probabilities)
    assert strip.shape == (8, 8, 3)
    assert (strip[:4, :4] == 9).all() and (strip[:4, 4:] == 200).all()
    assert (strip[4:, :4] == 128).all()  # 0.5 * 255 rounded
    assert strip[4, 4].tolist() == [255, 255, 255] and (strip[4:, 4:].sum() == 3 * 255)
    assert stage1_strip([], []) is None
