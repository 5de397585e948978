"""The canonical keypoint layout: COCO-WholeBody, 133 points of (x_px, y_px, score).

    0-16    body (COCO 17)          17-22   feet (6)
    23-90   face (68, dlib layout)  91-111  left hand (21)   112-132  right hand (21)

A hand's 21 points are the wrist, then each finger from base to tip: thumb,
index, middle, ring, pinky (4 each). ``score`` is in [0, 1]; 0 means absent.
"Left" and "right" are the person's own sides, not the image's.

A point is *present* when its score is above 0, and only then: an absent point is
``(0, 0, 0)``, so that nothing downstream (boxes, framings, skeletons, metric targets,
detections) can use a position nobody saw. ``seen_points`` applies the rule to a detector's
output (SPEC 3.2): a point is present when its visibility reaches ``min_visibility`` and it
lies inside the image.
"""

from __future__ import annotations

import numpy as np

NUM_KEYPOINTS = 133
BODY = slice(0, 17)
FEET = slice(17, 23)
FACE = slice(23, 91)
LEFT_HAND = slice(91, 112)
RIGHT_HAND = slice(112, 133)
HANDS = slice(91, 133)
NUM_HAND_KEYPOINTS = 21

BODY_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
FOOT_NAMES = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
HAND_NAMES = ("wrist", *(f"{finger}{j}" for finger in FINGERS for j in range(1, 5)))

BODY_INDEX = {name: i for i, name in enumerate(BODY_NAMES)}
SIDES = ("left", "right")


def hand_slice(side: str) -> slice:
    """The 21 canonical slots of the person's ``side`` hand ("left" or "right")."""
    if side == "left":
        return LEFT_HAND
    if side == "right":
        return RIGHT_HAND
    raise ValueError(f"hand side must be 'left' or 'right', got {side!r}")


def finger_joints(finger: str) -> tuple[int, ...]:
    """Hand-local indices of one finger's joints, wrist included (for per-finger heatmaps)."""
    f = FINGERS.index(finger)
    return (0, *range(1 + 4 * f, 5 + 4 * f))


def empty_keypoints() -> np.ndarray:
    """(133, 3) float32 zeros: every point absent."""
    return np.zeros((NUM_KEYPOINTS, 3), np.float32)


MIN_VISIBILITY = 0.5
"""Mediapipe's own drawing utilities skip a landmark whose visibility is under 0.5
(``mediapipe/python/solutions/drawing_utils.py``, ``_VISIBILITY_THRESHOLD``, lines 28-29 and
162-165 of 0.10.21)."""


def seen_points(points: np.ndarray, width: int, height: int, min_visibility: float = MIN_VISIBILITY) -> np.ndarray:
    """(N, 3) detected points (x_px, y_px, visibility) -> the same with every point that was not
    seen set to ``(0, 0, 0)``: a visibility under ``min_visibility``, or a position outside the
    ``width`` x ``height`` image (Mediapipe Pose places all 33 landmarks, guessing the ones out of
    frame, often with a visibility near 0 but not always)."""
    points = np.asarray(points, np.float32)
    x, y, visibility = points[:, 0], points[:, 1], points[:, 2]
    seen = (visibility > 0) & (visibility >= min_visibility) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
    return np.where(seen[:, None], points, 0).astype(np.float32)


def hands_present(keypoints: np.ndarray, min_points: int) -> list[str]:
    """The sides whose hand has at least ``min_points`` present points, of (133, 3) keypoints:
    the hands a crop set is made of and inference plans crops for (one rule for both)."""
    return [side for side in SIDES if int((keypoints[hand_slice(side), 2] > 0).sum()) >= min_points]


# --- Dataset joint orders -> canonical hand order -------------------------------------
# InterHand2.6M stores each hand tip-first: thumb4..thumb1, index4..1, middle, ring,
# pinky, then the wrist (index 20); right hand 0-20, left hand 21-41.
INTERHAND_TO_HAND = np.array([20, *(4 * f + (3 - j) for f in range(5) for j in range(4))])
"""``hand21 = interhand_hand[INTERHAND_TO_HAND]`` for one hand's 21 InterHand joints."""

# Re:InterHand keypoint files hold 24 joints per hand: the wrist, Thumb_0..4,
# Index/Middle/Ring_1..4, Pinky_0..4 and a forearm stub. Thumb_0 / Pinky_0 (metacarpal
# bases) and the stub have no canonical slot, as in the release's own MANO mapping.
REINTERHAND_JOINTS = (
    "Wrist",
    "Thumb_0",
    "Thumb_1",
    "Thumb_2",
    "Thumb_3",
    "Thumb_4",
    "Index_1",
    "Index_2",
    "Index_3",
    "Index_4",
    "Middle_1",
    "Middle_2",
    "Middle_3",
    "Middle_4",
    "Ring_1",
    "Ring_2",
    "Ring_3",
    "Ring_4",
    "Pinky_0",
    "Pinky_1",
    "Pinky_2",
    "Pinky_3",
    "Pinky_4",
    "Forearm_Stub",
)
REINTERHAND_TO_HAND = np.array(
    [REINTERHAND_JOINTS.index("Wrist")]
    + [REINTERHAND_JOINTS.index(f"{name}_{j}") for name in ("Thumb", "Index", "Middle", "Ring", "Pinky") for j in range(1, 5)]
)
"""``hand21 = reinterhand_hand[REINTERHAND_TO_HAND]`` for one hand's 24 Re:InterHand joints."""


def hand_box(points: np.ndarray, scores: np.ndarray | None = None, min_score: float = 0.0) -> tuple[float, float, float, float] | None:
    """Tight ``(x, y, w, h)`` pixel box around the points whose score exceeds ``min_score``.

    Args:
        points: (N, 2) pixel coordinates.
        scores: (N,) in [0, 1]; all points count when None.
    Returns None when no point counts.
    """
    keep = np.ones(len(points), bool) if scores is None else scores > min_score
    if not keep.any():
        return None
    xy = points[keep]
    x0, y0 = xy.min(0)
    x1, y1 = xy.max(0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


# --- COCO-WholeBody -> OpenPose 18 (the body layout the OpenPose ControlNet was trained on) --
OPENPOSE18_NAMES = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)


def to_openpose18(keypoints: np.ndarray) -> np.ndarray:
    """(133, 3) canonical keypoints -> (18, 3) OpenPose body points (x_px, y_px, score).

    The neck, which COCO lacks, is the shoulders' midpoint, scored by the weaker shoulder
    (absent unless both are present).
    """
    out = np.zeros((18, 3), np.float32)
    for i, name in enumerate(OPENPOSE18_NAMES):
        if name != "neck":
            out[i] = keypoints[BODY_INDEX[name]]
    left, right = keypoints[BODY_INDEX["left_shoulder"]], keypoints[BODY_INDEX["right_shoulder"]]
    if left[2] > 0 and right[2] > 0:
        out[1] = ((left[0] + right[0]) / 2, (left[1] + right[1]) / 2, min(left[2], right[2]))
    return out
