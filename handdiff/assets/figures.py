"""Synthetic people and hands, drawn exactly where their keypoints say.

The sample datasets need images whose annotations are known to be right, so that
readers, crops and heatmaps can be checked against pixels: a hand keypoint drawn
here lies on skin-coloured pixels of a hand, a body keypoint on the figure.

Hands come from a small kinematic model (wrist, then each finger from base to
tip in the canonical order of ``handdiff.data.keypoints``) with a curl per finger
that gives the gestures; bodies are COCO-WholeBody skeletons of a standing person.
"""

from __future__ import annotations

import cv2
import numpy as np

from handdiff.data import keypoints as kp

# Per-finger curl in [0, 1] (thumb, index, middle, ring, pinky).
GESTURE_CURLS: dict[str, tuple[float, ...]] = {
    "palm": (0.0, 0.0, 0.0, 0.0, 0.0),
    "fist": (0.9, 1.0, 1.0, 1.0, 1.0),
    "peace": (0.9, 0.0, 0.0, 1.0, 1.0),
    "one": (0.9, 0.0, 1.0, 1.0, 1.0),
    "like": (0.0, 1.0, 1.0, 1.0, 1.0),
    "no_gesture": (0.3, 0.35, 0.4, 0.45, 0.5),
}

# Hand model in units of hand length (wrist to middle fingertip ~ 1), right hand,
# x toward the thumb, y toward the fingers, palm facing -z.
_FINGER_BASES = np.array([[0.12, 0.10], [0.17, 0.45], [0.04, 0.47], [-0.08, 0.44], [-0.18, 0.39]])
_FINGER_DIRECTIONS = np.array([[0.6, 0.8], [0.1, 1.0], [0.0, 1.0], [-0.08, 1.0], [-0.2, 1.0]])
_SEGMENTS = np.array([[0.20, 0.16, 0.13], [0.22, 0.13, 0.10], [0.24, 0.15, 0.11], [0.22, 0.14, 0.10], [0.17, 0.11, 0.09]])
_MAX_FLEX = np.radians([[30, 45, 60], [80, 100, 70], [80, 100, 70], [80, 100, 70], [80, 100, 70]])

SKIN_TONES = np.array([[233, 192, 160], [205, 150, 110], [160, 110, 75], [110, 75, 50], [245, 210, 185]], np.uint8)


def hand_model(curls: tuple[float, ...], spread: float = 0.0) -> np.ndarray:
    """(21, 3) joints of a right hand in its local frame (units of hand length).

    Args:
        curls: per finger (thumb..pinky) in [0, 1]; 1 folds the finger into the palm.
        spread: extra fanning of the fingers in radians.
    """
    joints = np.zeros((21, 3))
    palm_normal = np.array([0.0, 0.0, -1.0])
    for f in range(5):
        direction = np.append(_FINGER_DIRECTIONS[f] / np.linalg.norm(_FINGER_DIRECTIONS[f]), 0.0)
        fan = spread * (f - 2) / 2
        if f == 0:  # a curled thumb swings across the palm
            fan -= 1.2 * curls[0]
        rot = np.array([[np.cos(fan), -np.sin(fan), 0], [np.sin(fan), np.cos(fan), 0], [0, 0, 1]])
        direction = rot @ direction
        point = np.append(_FINGER_BASES[f], 0.0)
        joints[1 + 4 * f] = point
        flex = 0.0
        for s in range(3):
            flex += curls[f] * _MAX_FLEX[f, s]
            step = np.cos(flex) * direction + np.sin(flex) * palm_normal
            point = point + _SEGMENTS[f, s] * step
            joints[2 + 4 * f + s] = point
    return joints


def place_hand_2d(local: np.ndarray, wrist: np.ndarray, direction: np.ndarray, length_px: float, side: str) -> np.ndarray:
    """Image-plane pose of a hand seen palm-on: (21, 2) pixel coordinates.

    ``direction`` points from the wrist toward the fingers; a person's right hand
    seen palm-on has its thumb on the image's right, a left hand is mirrored.
    """
    d = np.asarray(direction, np.float64)
    d /= np.linalg.norm(d)
    thumb_axis = np.array([-d[1], d[0]])  # d rotated +90 degrees in image coordinates
    if side == "left":
        thumb_axis = -thumb_axis
    return wrist + length_px * (local[:, :1] * thumb_axis + local[:, 1:2] * d)


def hand_outline_width(points: np.ndarray) -> float:
    """Finger thickness in pixels for a projected hand: a fraction of its palm length."""
    palm = np.linalg.norm(points[9] - points[0])
    return max(2.0, 0.28 * palm)


def draw_hand(image: np.ndarray, points: np.ndarray, skin: np.ndarray, mask: np.ndarray | None = None) -> None:
    """Draw a hand whose 21 canonical joints are at ``points`` (21, 2) px, in place.

    Also paints the hand into ``mask`` (H, W) uint8 when given, as a release mask would.
    """
    width = hand_outline_width(points)
    thick = max(1, int(round(width)))
    shade = tuple(int(c) for c in (skin.astype(int) * 0.7).astype(np.uint8))
    colour = tuple(int(c) for c in skin)
    pts = np.round(points * 16).astype(np.int32)  # 4 bits of sub-pixel precision
    palm = pts[[0, 1, 5, 9, 13, 17]]
    targets = [(image, colour, shade)] + ([(mask, 255, 255)] if mask is not None else [])
    for canvas, fill, edge in targets:
        cv2.fillConvexPoly(canvas, cv2.convexHull(palm), fill, cv2.LINE_AA, shift=4)
        for f in range(5):
            chain = ([0] if f == 0 else []) + list(range(1 + 4 * f, 5 + 4 * f))  # the thumb starts at the wrist
            for a, b in zip(chain[:-1], chain[1:]):
                cv2.line(canvas, tuple(pts[a]), tuple(pts[b]), edge, thick + 2, cv2.LINE_AA, shift=4)
            for a, b in zip(chain[:-1], chain[1:]):
                cv2.line(canvas, tuple(pts[a]), tuple(pts[b]), fill, thick, cv2.LINE_AA, shift=4)


def draw_forearm(image: np.ndarray, wrist: np.ndarray, elbow: np.ndarray, width: float, colour: tuple[int, int, int]) -> None:
    cv2.line(image, _px(elbow), _px(wrist), colour, max(1, int(width)), cv2.LINE_AA)


def _px(point: np.ndarray) -> tuple[int, int]:
    return int(round(point[0])), int(round(point[1]))


def background(height: int, width: int, rng: np.random.Generator, clutter: int = 6) -> np.ndarray:
    """A room-like backdrop: a vertical gradient, a few boxes of furniture, sensor noise."""
    top, bottom = rng.integers(60, 230, size=(2, 3))
    t = np.linspace(0, 1, height)[:, None, None]
    image = (top * (1 - t) + bottom * t).repeat(width, axis=1).astype(np.float32)
    for _ in range(clutter):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(width // 10, width // 3), rng.integers(height // 10, height // 3)
        image[y0 : y0 + h, x0 : x0 + w] = rng.integers(30, 255, size=3)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def face_points(nose: np.ndarray, face_w: float, face_h: float) -> np.ndarray:
    """The 68 dlib-layout face points around ``nose`` for a frontal face: (68, 2) px.

    Point 0 is on the person's right (the image's left), as in dlib.
    """
    cx, cy = nose
    a, b = face_w / 2, face_h / 2
    pts = []
    for k in range(17):  # jaw: ear to ear around the chin
        t = np.pi - k * np.pi / 16
        pts.append((cx + a * np.cos(t), cy - 0.05 * face_h + b * 0.9 * np.sin(t)))
    for start in (-0.75, 0.15):  # eyebrows, image-left first, each drawn left to right
        for k in range(5):
            pts.append((cx + a * (start + 0.15 * k), cy - 0.32 * face_h - 0.03 * face_h * np.sin(np.pi * k / 4)))
    for k in range(4):  # nose bridge
        pts.append((cx, cy - 0.25 * face_h + k * 0.07 * face_h))
    for k in range(5):  # nostrils
        pts.append((cx + (k - 2) * 0.07 * face_w, cy + 0.05 * face_h))
    for side in (-1, 1):  # eyes, 6 points each, image-left first
        ex = cx + side * 0.4 * a
        for k in range(6):
            t = np.pi * k / 3
            pts.append((ex - 0.15 * a * np.cos(t), cy - 0.17 * face_h - 0.03 * face_h * np.sin(t)))
    for k in range(12):  # outer lip
        t = np.pi - 2 * np.pi * k / 12
        pts.append((cx + 0.3 * a * np.cos(t), cy + 0.22 * face_h - 0.06 * face_h * np.sin(t)))
    for k in range(8):  # inner lip
        t = np.pi - 2 * np.pi * k / 8
        pts.append((cx + 0.2 * a * np.cos(t), cy + 0.22 * face_h - 0.025 * face_h * np.sin(t)))
    return np.array(pts)


def person_keypoints(
    center_x: float,
    top_y: float,
    height: float,
    raised: dict[str, bool],
    gestures: dict[str, str],
    rng: np.random.Generator,
) -> np.ndarray:
    """(133, 3) whole-body keypoints of a person facing the camera, scores 1.

    Args:
        center_x, top_y: top of the head, pixels. height: standing height, pixels.
        raised: per side, whether the forearm points up (showing the hand) or down.
        gestures: per side, a key of ``GESTURE_CURLS``.
    """
    H = height
    out = kp.empty_keypoints()

    def at(dx: float, dy: float) -> np.ndarray:
        return np.array([center_x + dx * H, top_y + dy * H])

    body = {
        "nose": at(0, 0.075),
        "left_eye": at(0.02, 0.06),
        "right_eye": at(-0.02, 0.06),
        "left_ear": at(0.045, 0.07),
        "right_ear": at(-0.045, 0.07),
        "left_shoulder": at(0.11, 0.19),
        "right_shoulder": at(-0.11, 0.19),
        "left_hip": at(0.075, 0.52),
        "right_hip": at(-0.075, 0.52),
        "left_knee": at(0.08, 0.73),
        "right_knee": at(-0.08, 0.73),
        "left_ankle": at(0.08, 0.94),
        "right_ankle": at(-0.08, 0.94),
    }
    for side, sign in (("left", 1), ("right", -1)):
        shoulder = body[f"{side}_shoulder"]
        jitter = rng.normal(0, 0.01, 2) * H
        if raised[side]:
            elbow = shoulder + np.array([sign * 0.11, 0.13]) * H + jitter
            wrist = elbow + np.array([sign * 0.01, -0.15]) * H
        else:
            elbow = shoulder + np.array([sign * 0.04, 0.16]) * H + jitter
            wrist = elbow + np.array([sign * 0.015, 0.15]) * H
        body[f"{side}_elbow"], body[f"{side}_wrist"] = elbow, wrist
    for name, point in body.items():
        out[kp.BODY_INDEX[name]] = (*point, 1.0)
    for i, (side, dx) in enumerate((("left", 1), ("right", -1))):  # toes point at the camera: drawn below the ankle
        ankle = body[f"{side}_ankle"]
        feet = [ankle + np.array([dx * 0.01, 0.04]) * H, ankle + np.array([dx * 0.035, 0.035]) * H, ankle + np.array([0, 0.015]) * H]
        out[17 + 3 * i : 20 + 3 * i] = np.column_stack([feet, np.ones(3)])
    out[kp.FACE] = np.column_stack([face_points(body["nose"], 0.09 * H, 0.12 * H), np.ones(68)])
    for side in kp.SIDES:
        wrist, elbow = body[f"{side}_wrist"], body[f"{side}_elbow"]
        local = hand_model(GESTURE_CURLS[gestures[side]], spread=rng.uniform(0, 0.25))
        points = place_hand_2d(local, wrist, wrist - elbow, 0.1 * H, side)
        out[kp.hand_slice(side)] = np.column_stack([points, np.ones(21)])
    return out


def mark_outside(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scores of points outside the image set to 0 (COCO: not labelled)."""
    out = keypoints.copy()
    x, y = out[:, 0], out[:, 1]
    out[(x < 0) | (y < 0) | (x >= width) | (y >= height), 2] = 0
    return out


def draw_person(image: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator) -> None:
    """Draw a figure whose joints are at ``keypoints`` (133, 3), in place."""
    k = keypoints[:, :2]
    b = {name: k[i] for i, name in enumerate(kp.BODY_NAMES)}
    H = np.linalg.norm(b["left_ankle"] - b["nose"]) / 0.865
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    cloth = tuple(int(c) for c in rng.integers(20, 235, size=3))
    trousers = tuple(int(c) for c in rng.integers(20, 160, size=3))
    limb = max(2, int(0.05 * H))
    torso = np.array([b["left_shoulder"], b["right_shoulder"], b["right_hip"], b["left_hip"]])
    for side in kp.SIDES:  # legs, then torso over them
        cv2.line(image, _px(b[f"{side}_hip"]), _px(b[f"{side}_knee"]), trousers, limb, cv2.LINE_AA)
        cv2.line(image, _px(b[f"{side}_knee"]), _px(b[f"{side}_ankle"]), trousers, limb, cv2.LINE_AA)
    for i, side in enumerate(kp.SIDES):
        shoe = np.vstack([k[17 + 3 * i : 20 + 3 * i], b[f"{side}_ankle"]])
        cv2.fillConvexPoly(image, cv2.convexHull(np.round(shoe).astype(np.int32)), (40, 40, 40), cv2.LINE_AA)
    cv2.fillConvexPoly(image, np.round(torso).astype(np.int32), cloth, cv2.LINE_AA)
    neck_top = b["nose"] + np.array([0, 0.06 * H])
    cv2.line(
        image, _px(neck_top), _px((b["left_shoulder"] + b["right_shoulder"]) / 2), tuple(int(c) for c in skin), int(0.04 * H), cv2.LINE_AA
    )
    face = k[kp.FACE]
    centre = face.mean(0)
    axes = (int(0.055 * H), int(0.075 * H))
    cv2.ellipse(image, _px(centre - np.array([0, 0.01 * H])), axes, 0, 0, 360, tuple(int(c) for c in skin), -1, cv2.LINE_AA)
    cv2.ellipse(image, _px(centre - np.array([0, 0.04 * H])), (axes[0] + 2, axes[1] - 4), 0, 180, 360, (50, 35, 20), -1, cv2.LINE_AA)
    for eye in (face[36:42], face[42:48]):  # dlib indices within the 68 face points
        cv2.fillPoly(image, [np.round(eye).astype(np.int32)], (30, 30, 30), cv2.LINE_AA)
    cv2.polylines(image, [np.round(face[48:60]).astype(np.int32)], True, (120, 40, 50), max(1, int(0.006 * H)), cv2.LINE_AA)
    for side in kp.SIDES:  # arms over the torso, hands last
        shoulder, elbow, wrist = b[f"{side}_shoulder"], b[f"{side}_elbow"], b[f"{side}_wrist"]
        cv2.line(image, _px(shoulder), _px(elbow), cloth, limb, cv2.LINE_AA)
        draw_forearm(image, wrist, elbow, limb * 0.8, cloth)
        draw_hand(image, k[kp.hand_slice(side)], skin)


def random_rotation(rng: np.random.Generator, max_angle: float = np.pi) -> np.ndarray:
    """A random 3D rotation matrix, at most ``max_angle`` radians from identity."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-max_angle, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
