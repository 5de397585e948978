"""Pictures for people: keypoints drawn on images, contact sheets for MLflow and notebooks."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from handdiff.data import keypoints as kp

# COCO body limbs, by body index
BODY_EDGES = (
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (5, 6),
    (5, 7),
    (7, 9),
    (6, 8),
    (8, 10),
    (5, 11),
    (6, 12),
    (11, 12),
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),
)
HAND_EDGES = tuple((0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j) for f in range(5) for j in range(4))
FINGER_COLOURS = ((255, 64, 64), (255, 200, 0), (64, 220, 64), (0, 180, 255), (200, 80, 255))


def draw_keypoints(image: np.ndarray, keypoints: np.ndarray, min_score: float = 0.0, thickness: int = 0) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 with 133-point keypoints (133, 3) drawn on it.

    Body limbs white, face points cyan, each finger its own colour; points whose
    score is not above ``min_score`` are skipped.
    """
    out = image.copy()
    t = thickness or max(1, round(max(image.shape[:2]) / 250))
    ok = keypoints[:, 2] > min_score
    xy = np.round(keypoints[:, :2]).astype(int)

    def line(a: int, b: int, colour) -> None:
        if ok[a] and ok[b]:
            cv2.line(out, tuple(xy[a]), tuple(xy[b]), colour, t, cv2.LINE_AA)

    for a, b in BODY_EDGES:
        line(a, b, (255, 255, 255))
    for i in range(kp.FACE.start, kp.FACE.stop):
        if ok[i]:
            cv2.circle(out, tuple(xy[i]), t, (0, 255, 255), -1, cv2.LINE_AA)
    for hand in (kp.LEFT_HAND, kp.RIGHT_HAND):
        for e, (a, b) in enumerate(HAND_EDGES):
            line(hand.start + a, hand.start + b, FINGER_COLOURS[e // 4])
    return out


def contact_sheet(images: Sequence[np.ndarray], columns: int = 6, cell: int = 160, labels: Sequence[str] | None = None) -> np.ndarray:
    """Images letterboxed into ``cell`` x ``cell`` tiles on a grid: (rows*cell, columns*cell, 3) uint8."""
    rows = max(1, -(-len(images) // columns))
    sheet = np.full((rows * cell, columns * cell, 3), 32, np.uint8)
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        scale = cell / max(h, w)
        tile = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, columns)
        y, x = r * cell + (cell - tile.shape[0]) // 2, c * cell + (cell - tile.shape[1]) // 2
        sheet[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
        if labels:
            cv2.putText(
                sheet, labels[i][:24], (c * cell + 3, r * cell + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA
            )
    return sheet


def overlay_mask(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (255, 0, 0), alpha: float = 0.45) -> np.ndarray:
    """A copy of ``image`` with ``mask`` (H, W) bool tinted in ``colour``."""
    out = image.copy()
    out[mask] = (out[mask] * (1 - alpha) + np.array(colour) * alpha).astype(np.uint8)
    return out


def annotated_tile(record: dict) -> np.ndarray:
    """An annotated record's image with its hand masks tinted red and its keypoints drawn."""
    from handdiff.annotation.stages import decode_hand_masks
    from handdiff.data.images import load_image
    from handdiff.data.records import keypoints_from_column

    image = overlay_mask(load_image(record["image_uri"]), decode_hand_masks(record), (255, 0, 0))
    return draw_keypoints(image, keypoints_from_column(record["keypoints"]))
