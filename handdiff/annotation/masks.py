"""Mask prompts and post-processing: each hand is prompted with its keypoints (positive
points) and a box around them, the person with a box around the whole-body keypoints;
hand masks get a 5 x 5 dilation (the paper's fix for SAM's checkerboard and broken edges).

Numpy and OpenCV only: the stateless annotation stages import this module in every Ray
task worker, and the model itself (``handdiff.annotation.sam_masker``) needs torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from handdiff.data import keypoints as kp


def dilate(mask: np.ndarray, kernel: int = 5) -> np.ndarray:
    """Binary dilation with a ``kernel`` x ``kernel`` square; kernel <= 1 returns the mask."""
    if kernel <= 1:
        return mask.astype(bool)
    return cv2.dilate(mask.astype(np.uint8), np.ones((kernel, kernel), np.uint8)).astype(bool)


def expand_box(box_xywh: tuple[float, float, float, float], margin: float, width: int, height: int) -> np.ndarray:
    """``[x, y, w, h]`` grown by ``margin`` of its longer side on every edge, clipped: ``[x0, y0, x1, y1]``."""
    x, y, w, h = box_xywh
    m = margin * max(w, h)
    return np.array([max(0.0, x - m), max(0.0, y - m), min(float(width), x + w + m), min(float(height), y + h + m)])


@dataclass
class MaskPrompt:
    """Positive points (N, 2) px (may be empty) and a box [x0, y0, x1, y1] px."""

    points: np.ndarray
    box: np.ndarray


def hand_prompt(hand: np.ndarray, width: int, height: int, margin: float) -> MaskPrompt | None:
    """The prompt of one hand's (21, 3) keypoints; None if no point is scored."""
    scored = hand[:, 2] > 0
    box = kp.hand_box(hand[:, :2], hand[:, 2])
    if box is None:
        return None
    return MaskPrompt(hand[scored, :2], expand_box(box, margin, width, height))


def person_prompt(keypoints: np.ndarray, width: int, height: int, margin: float) -> MaskPrompt | None:
    """A box-only prompt around every scored whole-body keypoint; None without a body."""
    if keypoints[kp.BODY, 2].max() <= 0:
        return None
    box = kp.hand_box(keypoints[:, :2], keypoints[:, 2])
    return MaskPrompt(np.zeros((0, 2)), expand_box(box, margin, width, height))
