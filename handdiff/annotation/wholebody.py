"""Whole-body keypoints from Mediapipe Holistic, in the canonical COCO-WholeBody layout.

Mediapipe names pose landmarks and hands by the person's own sides, for an
unmirrored photo: ``left_shoulder`` / ``left_hand_landmarks`` are the person's
left, which is the image's right for a person facing the camera (pinned by tests
on real photos and on synthetic figures with known hands).

Mapping (SPEC 3.2): pose 0, 2, 5, 7, 8, 11-16, 23-28 -> COCO body 0-16; foot index
and heel -> big toe and heel of each foot (small toes have no counterpart: score 0);
the 468-point face mesh -> the 68 dlib points by ``FACE_MESH_TO_DLIB68``; hands 1:1.
Scores: pose visibility for body and feet, 1 for detected face and hand points; then the
presence rule (``handdiff.data.keypoints.seen_points``, SPEC 3.2): a point under
``min_visibility`` or outside the image is absent, ``(0, 0, 0)``. Annotation and the score job's
detection both go through ``holistic_to_wholebody``, so targets and detections follow one rule.
"""

from __future__ import annotations

import numpy as np

from handdiff.data import keypoints as kp

POSE_TO_BODY = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
POSE_TO_FEET = (31, None, 29, 32, None, 30)  # left big toe, small toe, heel; right ...

# One mesh index per dlib point, or two to average. dlib order: jaw from the person's
# right ear (image left) over the chin, brows (right then left), nose bridge,
# nostrils, right eye, left eye (each from its outer or inner corner, clockwise in
# the image), outer lip from the right corner, inner lip.
FACE_MESH_TO_DLIB68: tuple[tuple[int, ...], ...] = (
    (127,),
    (234,),
    (93,),
    (132, 58),
    (58, 172),
    (136,),
    (150,),
    (176,),
    (152,),  # jaw 0-8
    (400,),
    (379,),
    (365,),
    (397, 288),
    (361,),
    (323,),
    (454,),
    (356,),  # jaw 9-16
    (70,),
    (63,),
    (105,),
    (66,),
    (107,),  # right brow 17-21, outer to inner
    (336,),
    (296,),
    (334,),
    (293,),
    (300,),  # left brow 22-26, inner to outer
    (168, 6),
    (197, 195),
    (5,),
    (4,),  # nose bridge 27-30, top to tip
    (75,),
    (97,),
    (2,),
    (326,),
    (305,),  # nostrils 31-35
    (33,),
    (160,),
    (158,),
    (133,),
    (153,),
    (144,),  # right eye 36-41
    (362,),
    (385,),
    (387,),
    (263,),
    (373,),
    (380,),  # left eye 42-47
    (61,),
    (40,),
    (37,),
    (0,),
    (267,),
    (270,),
    (291,),
    (321,),
    (314,),
    (17,),
    (84,),
    (91,),  # outer lip 48-59
    (78,),
    (81,),
    (13,),
    (311,),
    (308,),
    (402,),
    (14,),
    (178,),  # inner lip 60-67
)


def _points(landmarks, width: int, height: int) -> np.ndarray:
    """Mediapipe normalised landmarks -> (N, 3) of (x_px, y_px, visibility); a landmark without a
    visibility field (face mesh, hands) has 1. A visibility of 0.0 stays 0."""
    return np.array(
        [(p.x * width, p.y * height, p.visibility if p.HasField("visibility") else 1.0) for p in landmarks.landmark], np.float32
    )


def holistic_to_wholebody(result, width: int, height: int, min_visibility: float = kp.MIN_VISIBILITY) -> np.ndarray:
    """A Holistic result on a ``width`` x ``height`` image -> (133, 3) canonical keypoints.

    Parts Holistic did not find, and points that were not seen (``kp.seen_points``), are absent.
    """
    out = kp.empty_keypoints()
    if result.pose_landmarks is not None:
        pose = _points(result.pose_landmarks, width, height)
        out[kp.BODY] = pose[list(POSE_TO_BODY)]
        for slot, index in enumerate(POSE_TO_FEET):
            if index is not None:
                out[kp.FEET.start + slot] = pose[index]
    if result.face_landmarks is not None:
        mesh = _points(result.face_landmarks, width, height)[:, :2]
        face = np.array([mesh[list(ids)].mean(0) for ids in FACE_MESH_TO_DLIB68])
        out[kp.FACE] = np.column_stack([face, np.ones(68)])
    for side, landmarks in (("left", result.left_hand_landmarks), ("right", result.right_hand_landmarks)):
        if landmarks is not None:
            hand = _points(landmarks, width, height)
            hand[:, 2] = 1.0
            out[kp.hand_slice(side)] = hand
    return kp.seen_points(out, width, height, min_visibility)


def holistic_model_id(version: str, model_complexity: int, min_detection_confidence: float, min_visibility: float) -> str:
    """What a record's keypoints came from, as written beside it (and in a score job's rows)."""
    return f"mediapipe-holistic {version} complexity={model_complexity} min_conf={min_detection_confidence} min_visibility={min_visibility}"


class HolisticKeypoints:
    """Mediapipe Holistic in static-image mode: ``(H, W, 3)`` uint8 RGB -> (133, 3).

    ``model_complexity=1`` is the one whose models ship with mediapipe 0.10.21
    (0 and 2 download theirs at first use).
    """

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5, min_visibility: float = kp.MIN_VISIBILITY):
        import mediapipe as mp

        self._holistic = mp.solutions.holistic.Holistic(
            static_image_mode=True,
            model_complexity=model_complexity,
            min_detection_confidence=min_detection_confidence,
            refine_face_landmarks=False,
        )
        self.min_visibility = min_visibility
        self.model_id = holistic_model_id(mp.__version__, model_complexity, min_detection_confidence, min_visibility)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        result = self._holistic.process(np.ascontiguousarray(image))
        return holistic_to_wholebody(result, image.shape[1], image.shape[0], self.min_visibility)

    def close(self) -> None:
        self._holistic.close()


class FaceCounter:
    """Counts faces with Mediapipe's full-range face detector: the person count (our
    choice, since Holistic follows one person only)."""

    def __init__(self, min_detection_confidence: float = 0.5):
        import mediapipe as mp

        self._detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_detection_confidence)
        self.model_id = f"mediapipe-face-detection {mp.__version__} full-range"

    def __call__(self, image: np.ndarray) -> int:
        result = self._detector.process(np.ascontiguousarray(image))
        return len(result.detections or [])


class HandLandmarks:
    """Mediapipe Hands in static-image mode: ``(H, W, 3)`` uint8 RGB -> each hand found, (21, 3) of
    (x_px, y_px, 1) in the canonical hand order (Mediapipe's own 21-point order), points outside
    the image absent. Handedness is not reported: who uses this (HandRefiner's hand finding)
    draws every hand alike."""

    def __init__(self, max_hands: int = 2, min_detection_confidence: float = 0.5):
        import mediapipe as mp

        self._hands = mp.solutions.hands.Hands(
            static_image_mode=True, max_num_hands=max_hands, min_detection_confidence=min_detection_confidence
        )
        self.model_id = f"mediapipe-hands {mp.__version__} max_hands={max_hands} min_conf={min_detection_confidence}"

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        result = self._hands.process(np.ascontiguousarray(image))
        height, width = image.shape[:2]
        return [kp.seen_points(_points(hand, width, height), width, height) for hand in result.multi_hand_landmarks or []]

    def close(self) -> None:
        self._hands.close()
