"""Pasting crops into the canvas (handdiff.inference.compose)."""

from __future__ import annotations

import numpy as np
import torch

from handdiff.inference.compose import paste_square, resize_square


def test_shrinking_a_crop_into_the_canvas_averages_like_opencv_inter_area():
    """1-px stripes shrunk from 512 to 100 px: area averaging gives the stripes' mean grey, as
    OpenCV's INTER_AREA (which made the training crops) does; bilinear without antialiasing
    samples a few source pixels per output pixel and leaves moire bands."""
    import cv2

    stripes = np.zeros((512, 512), np.float32)
    stripes[:, ::2] = 1.0
    ours = resize_square(torch.as_tensor(stripes)[None], 100)[0].numpy()
    reference = cv2.resize(stripes, (100, 100), interpolation=cv2.INTER_AREA)
    assert np.abs(ours - reference).max() < 1e-5 and np.abs(ours - 0.5).max() < 0.1  # 5.12 px per output px: 0.41-0.59
    aliased = torch.nn.functional.interpolate(torch.as_tensor(stripes)[None, None], size=(100, 100), mode="bilinear")[0, 0].numpy()
    assert np.abs(aliased - reference).mean() > 0.1 and np.abs(aliased - 0.5).max() > 0.4  # what the paste did before
    target = torch.zeros(1, 200, 200)
    paste_square(target, torch.as_tensor(stripes)[None], 50, 50, 100)
    assert np.abs(target[0, 50:150, 50:150].numpy() - reference).max() < 1e-5  # the paste itself; latents take the same path
    mask = torch.zeros(1, 512, 512)
    mask[:, 100:400, 100:400] = 1
    small = resize_square(mask, 100, binary=True)
    assert set(small.unique().tolist()) == {0.0, 1.0} and abs(small.mean().item() - (300 / 512) ** 2) < 0.02
