"""Skeleton images drawn the way the OpenPose ControlNet was trained on them.

This draws as ``controlnet_aux``'s OpenPose functions (``draw_bodypose``, ``draw_handpose``,
v0.0.10) do, with the 17 limbs of the original ControlNet annotator that rendered the
model's training data (``controlnet_aux`` zips 19 limb pairs with 18 colours and so draws an
18th, right shoulder to right ear, that the training renderer did not). The package itself
is not installed: it would add
``opencv-python-headless`` beside mediapipe's ``opencv-contrib-python``, two distributions
owning the one ``cv2`` module (whichever installs last silently wins), plus ``timm``
and ``einops`` for the detectors we do not use.

On a black RGB canvas, at 512 px:
- body: the 17 limbs of OpenPose-18 (``LIMBS``, the ear-shoulder pair excluded as in
  the original) as filled ellipses of half-width 4 in ``BODY_COLORS[limb]`` x 0.6, then
  each of the 18 points as a disc of radius 4 in ``BODY_COLORS[point]``;
- hands: the 20 bones of each hand as 2-px lines, bone ``i`` coloured HSV(i / 20, 1, 1),
  then each point as a disc of radius 4 in pure blue (0, 0, 255).
Sizes scale with the image (``size / 512``, at least 1 px), since SD 1.5 sees 512 px.
"""

from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

from handdiff.data import keypoints as kp

BODY_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0), (0, 255, 85), (0, 255, 170),
    (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
"""RGB per OpenPose-18 point, and per limb (limb i takes colour i)."""
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13), (1, 0), (0, 14),
         (14, 16), (0, 15), (15, 17))  # fmt: skip
"""OpenPose-18 point pairs (0-based), in drawing and colour order."""
HAND_BONES = tuple((0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j) for f in range(5) for j in range(4))
"""The 20 bones of a hand in canonical order (wrist, then each finger base to tip)."""
HAND_BONE_COLORS = tuple(tuple(round(c * 255) for c in colorsys.hsv_to_rgb(i / len(HAND_BONES), 1.0, 1.0)) for i in range(len(HAND_BONES)))
HAND_POINT_COLOR = (0, 0, 255)
LIMB_ALPHA = 0.6


def draw_skeleton(keypoints: np.ndarray, size: int, min_score: float = 0.0) -> np.ndarray:
    """(size, size, 3) uint8 skeleton image of (133, 3) canonical keypoints in image pixels.

    Points scoring ``min_score`` or less are absent; a limb or bone is drawn only when both
    ends are present.
    """
    canvas = np.zeros((size, size, 3), np.uint8)
    scale = size / 512
    stick, radius, bone = max(1, round(4 * scale)), max(1, round(4 * scale)), max(1, round(2 * scale))
    body = kp.to_openpose18(keypoints)
    present = body[:, 2] > min_score
    for (a, b), color in zip(LIMBS, BODY_COLORS, strict=False):
        if present[a] and present[b]:
            (x0, y0), (x1, y1) = body[a, :2], body[b, :2]
            length = math.hypot(x1 - x0, y1 - y0)
            angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
            polygon = cv2.ellipse2Poly((int((x0 + x1) / 2), int((y0 + y1) / 2)), (int(length / 2), stick), int(angle), 0, 360, 1)
            cv2.fillConvexPoly(canvas, polygon, [int(c * LIMB_ALPHA) for c in color])
    for i in np.flatnonzero(present):
        cv2.circle(canvas, (int(body[i, 0]), int(body[i, 1])), radius, BODY_COLORS[i], thickness=-1)
    for side in kp.SIDES:
        hand = keypoints[kp.hand_slice(side)]
        here = hand[:, 2] > min_score
        for (a, b), color in zip(HAND_BONES, HAND_BONE_COLORS, strict=True):
            if here[a] and here[b]:
                cv2.line(canvas, (int(hand[a, 0]), int(hand[a, 1])), (int(hand[b, 0]), int(hand[b, 1])), color, thickness=bone)
        for x, y, _ in hand[here]:
            cv2.circle(canvas, (int(x), int(y)), radius, HAND_POINT_COLOR, thickness=-1)
    return canvas
