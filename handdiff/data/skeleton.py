"""Skeleton images drawn the way each pose-conditioned model was trained on them:
``draw_skeleton`` for the OpenPose ControlNet 1.1 (ours and the ``controlnet-openpose``
baseline), ``draw_openpose_body`` for the body-only OpenPose models (T2I-Adapter's OpenPose
adapter, ControlNet 1.0), ``draw_humansd_pose`` for HumanSD.

``draw_skeleton``:

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
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
)
"""RGB per OpenPose-18 point, and per limb (limb i takes colour i)."""
LIMBS = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)
"""OpenPose-18 point pairs (0-based), in drawing and colour order."""
HAND_BONES = tuple((0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j) for f in range(5) for j in range(4))
"""The 20 bones of a hand in canonical order (wrist, then each finger base to tip)."""
HAND_BONE_COLORS = tuple(tuple(round(c * 255) for c in colorsys.hsv_to_rgb(i / len(HAND_BONES), 1.0, 1.0)) for i in range(len(HAND_BONES)))
HAND_POINT_COLOR = (0, 0, 255)
LIMB_ALPHA = 0.6


def _limb_polygon(a: np.ndarray, b: np.ndarray, stick: int) -> np.ndarray:
    """The filled ellipse OpenPose draws for a limb from point ``a`` to ``b`` (x, y px)."""
    (x0, y0), (x1, y1) = a[:2], b[:2]
    length = math.hypot(x1 - x0, y1 - y0)
    angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
    return cv2.ellipse2Poly((int((x0 + x1) / 2), int((y0 + y1) / 2)), (int(length / 2), stick), int(angle), 0, 360, 1)


def draw_skeleton(keypoints: np.ndarray, size: int, min_score: float = 0.0, hands: bool = True) -> np.ndarray:
    """(size, size, 3) uint8 skeleton image of (133, 3) canonical keypoints in image pixels.

    Points scoring ``min_score`` or less are absent; a limb or bone is drawn only when both
    ends are present. ``hands=False``: the body alone.
    """
    canvas = np.zeros((size, size, 3), np.uint8)
    scale = size / 512
    stick, radius, bone = max(1, round(4 * scale)), max(1, round(4 * scale)), max(1, round(2 * scale))
    body = kp.to_openpose18(keypoints)
    present = body[:, 2] > min_score
    for (a, b), color in zip(LIMBS, BODY_COLORS, strict=False):
        if present[a] and present[b]:
            cv2.fillConvexPoly(canvas, _limb_polygon(body[a], body[b], stick), [int(c * LIMB_ALPHA) for c in color])
    for i in np.flatnonzero(present):
        cv2.circle(canvas, (int(body[i, 0]), int(body[i, 1])), radius, BODY_COLORS[i], thickness=-1)
    if not hands:
        return canvas
    for side in kp.SIDES:
        hand = keypoints[kp.hand_slice(side)]
        here = hand[:, 2] > min_score
        for (a, b), color in zip(HAND_BONES, HAND_BONE_COLORS, strict=True):
            if here[a] and here[b]:
                cv2.line(canvas, (int(hand[a, 0]), int(hand[a, 1])), (int(hand[b, 0]), int(hand[b, 1])), color, thickness=bone)
        for x, y, _ in hand[here]:
            cv2.circle(canvas, (int(x), int(y)), radius, HAND_POINT_COLOR, thickness=-1)
    return canvas


def draw_openpose_body(keypoints: np.ndarray, size: int, min_score: float = 0.0) -> np.ndarray:
    """(size, size, 3) uint8: the body alone, drawn as the original pytorch-openpose annotator
    draws it, which rendered the training data of T2I-Adapter's OpenPose adapter
    (``TencentARC/T2I-Adapter``, ``ldm/modules/extra_condition/openpose/util.py``,
    ``draw_bodypose``; its ``api.py`` draws no hands) and of ControlNet 1.0's
    ``sd-controlnet-openpose`` (its annotator's hand option off): the 18 points first, discs of
    radius 4, then each of the 17 limbs as an ellipse of half-width 4 blended over the canvas
    at 0.6 (``cv2.addWeighted(canvas, 0.4, limb, 0.6, 0)``), so later limbs dim earlier ones
    and the points. Sizes scale with ``size / 512``."""
    canvas = np.zeros((size, size, 3), np.uint8)
    stick = radius = max(1, round(4 * size / 512))
    body = kp.to_openpose18(keypoints)
    present = body[:, 2] > min_score
    for i in np.flatnonzero(present):
        cv2.circle(canvas, (int(body[i, 0]), int(body[i, 1])), radius, BODY_COLORS[i], thickness=-1)
    for (a, b), color in zip(LIMBS, BODY_COLORS, strict=False):
        if present[a] and present[b]:
            limb = canvas.copy()
            cv2.fillConvexPoly(limb, _limb_polygon(body[a], body[b], stick), color)
            canvas = cv2.addWeighted(canvas, 1 - LIMB_ALPHA, limb, LIMB_ALPHA, 0)
    return canvas


HUMANSD_LIMBS = (
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (5, 11),
    (6, 12),
    (11, 13),
    (12, 14),
    (13, 15),
    (14, 16),
)
"""HumanSD's 16 COCO-17 limbs, in its colour order: no shoulder-shoulder and no hip-hip link
(``IDEA-Research/HumanSD``, ``scripts/pose2img.py`` ``draw_humansd_skeleton`` and
``ldm/data/humansd.py``)."""


def hls_palette(n_colors: int, h: float = 0.01, lightness: float = 0.6, saturation: float = 0.65) -> list[tuple[float, float, float]]:
    """seaborn's ``color_palette("hls", n_colors)`` (``seaborn/palettes.py``, ``hls_palette``):
    ``n_colors`` hues evenly spaced from ``h``, RGB in [0, 1]."""
    hues = (np.linspace(0, 1, n_colors + 1)[:-1] + h) % 1
    return [colorsys.hls_to_rgb(float(hue), lightness, saturation) for hue in hues]


HUMANSD_COLORS = tuple(tuple(int(255 * c) for c in rgb) for rgb in hls_palette(len(HUMANSD_LIMBS)))
"""RGB per HumanSD limb: ``int(255 * c)`` of seaborn's 16-colour "hls" palette, as HumanSD's ``line_color``."""
HUMANSD_THRESHOLD = 0.05
"""HumanSD's inference pose threshold (``scripts/pose2img.py``, ``--detection_thresh`` 0.05;
its fine-tuning config uses 0.02)."""


def draw_humansd_pose(keypoints: np.ndarray, size: int, threshold: float = HUMANSD_THRESHOLD) -> np.ndarray:
    """(size, size, 3) uint8: HumanSD's own pose drawing of the COCO-17 body of (133, 3)
    canonical keypoints, on black: each of ``HUMANSD_LIMBS`` whose two ends score above
    ``threshold`` as a line 10 px wide in its ``HUMANSD_COLORS`` colour, with filled discs of
    radius 5 (width // 2) at both ends; no hands, face or feet. Sizes scale with ``size / 512``
    (HumanSD draws at 512)."""
    canvas = np.zeros((size, size, 3), np.uint8)
    width = max(1, round(10 * size / 512))
    body = keypoints[kp.BODY]
    for (a, b), color in zip(HUMANSD_LIMBS, HUMANSD_COLORS, strict=True):
        if body[a, 2] > threshold and body[b, 2] > threshold:
            pa, pb = (int(body[a, 0]), int(body[a, 1])), (int(body[b, 0]), int(body[b, 1]))
            cv2.line(canvas, pa, pb, color, width)
            cv2.circle(canvas, pa, width // 2, color, -1)
            cv2.circle(canvas, pb, width // 2, color, -1)
    return canvas
