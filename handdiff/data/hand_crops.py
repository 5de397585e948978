"""The stage-1 training set: square hand crops with their keypoints, mask and caption (SPEC 3.4).

Crop rule (``plan_hand_crops``, the one rule of training and inference): the hands with at
least ``min_hand_points`` present keypoints, each boxed tightly around them; a square around a
hand's box grown by ``margin`` of its longer side on every edge (``handdiff.data.framing``);
when the two hands' boxes intersect, one square holds both, otherwise each hand gets its own. Whatever hand falls inside a square gets
its keypoints and its mask there, whichever hand the square was planned around. A row keeps every candidate crop of its image, so that the
paper's "one hand at random" is drawn when the set is read, anew each epoch. Crops
are resized to ``size`` x ``size``; what falls outside the image is black.

Sources are mixed by counts (the paper: 60,000 InterHand2.6M + 56,500 Re:InterHand +
76,800 HaGRID) by ``handdiff.data.selection``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pyarrow as pa

from handdiff.data import keypoints as kp
from handdiff.data.framing import crop_square, points_to_square, square_around
from handdiff.data.images import encode_image
from handdiff.data.records import RLE_TYPE
from handdiff.data.rle import decode_rle, encode_rle

CROP_TYPE = pa.struct(
    [
        pa.field("image", pa.binary()),  # JPEG, size x size RGB
        pa.field("keypoints", pa.list_(pa.float32())),  # 126 floats: 42 x (x_px, y_px, score) in the crop; left hand, then right
        pa.field("mask", RLE_TYPE),  # the cropped hands' mask, size x size
        pa.field("sides", pa.list_(pa.string())),  # the hands in this crop (planned around or brought in by the margin)
        pa.field("box", pa.list_(pa.float32())),  # [x0, y0, side] of the square in the source image, px
        pa.field("latents", pa.binary()),  # optional: VAE latents, float16 (4, size/8, size/8) * scaling factor
    ]
)
HAND_CROP_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("gesture", pa.string()),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("crops", pa.list_(CROP_TYPE), nullable=False),  # 1 or 2 candidates
        pa.field("text_embedding", pa.binary()),  # optional: CLIP text embedding, float16 (77, D)
        pa.field("crop_size", pa.int32(), nullable=False),
        pa.field("code_version", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True)
class CropPlan:
    x0: float
    y0: float
    side: float
    sides: tuple[str, ...]


def _intersects(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def plan_crops(boxes: list[list[float]], sides: list[str], margin: float, min_side: float = 16.0) -> list[CropPlan]:
    """The candidate crops of one image (see the module docstring). ``sides`` of a plan are the
    hands it was planned around; ``make_crops`` adds any other hand that falls inside."""
    if len(boxes) == 2 and _intersects(boxes[0], boxes[1]):
        x0 = min(b[0] for b in boxes)
        y0 = min(b[1] for b in boxes)
        x1 = max(b[0] + b[2] for b in boxes)
        y1 = max(b[1] + b[3] for b in boxes)
        return [CropPlan(*square_around([x0, y0, x1 - x0, y1 - y0], margin, min_side), tuple(sides))]
    return [CropPlan(*square_around(box, margin, min_side), (side,)) for box, side in zip(boxes, sides, strict=True)]


def plan_hand_crops(keypoints: np.ndarray, margin: float, min_hand_points: int) -> list[CropPlan]:
    """The candidate crops of (133, 3) keypoints: the hands with at least ``min_hand_points``
    present points (``kp.hands_present``), boxed tightly around those points, then ``plan_crops``."""
    sides = kp.hands_present(keypoints, min_hand_points)
    boxes = [list(kp.hand_box(keypoints[kp.hand_slice(s), :2], keypoints[kp.hand_slice(s), 2])) for s in sides]
    return plan_crops(boxes, sides, margin)


def crop_keypoints(keypoints: np.ndarray, plan: CropPlan, size: int) -> np.ndarray:
    """(42, 3) crop keypoints, left hand then right, from (133, 3) image keypoints.

    Every hand is mapped, whichever the crop was planned around: a hand that the margin
    brings into the crop keeps its points there; points outside the crop score 0.
    """
    return points_to_square(keypoints[kp.HANDS], plan.x0, plan.y0, plan.side, size)


def make_crops(record: dict, image: np.ndarray, size: int, margin: float, min_hand_points: int = 5, jpeg_quality: int = 95) -> list[dict]:
    """The candidate crops (``CROP_TYPE`` dicts) of one annotated record and its decoded image;
    ValueError when no hand has ``min_hand_points`` present points.

    Each crop's keypoints and mask hold every hand inside it (SPEC 3.4), and ``sides``
    names them: a second hand that the margin brings in is a hand, not background.
    """
    keypoints = np.asarray(record["keypoints"], np.float32).reshape(kp.NUM_KEYPOINTS, 3)
    plans = plan_hand_crops(keypoints, margin, min_hand_points)
    if not plans:
        raise ValueError(f"no hand with {min_hand_points} present keypoints")
    hands = np.zeros(image.shape[:2], np.uint8)
    for rle in record["hand_masks"]:
        hands |= decode_rle(rle)
    crops = []
    for plan in plans:
        points = crop_keypoints(keypoints, plan, size)
        inside = [side for offset, side in ((0, "left"), (21, "right")) if points[offset : offset + 21, 2].max() > 0]
        crop_mask = crop_square(hands, plan.x0, plan.y0, plan.side, size, cv2.INTER_NEAREST).astype(bool)
        crops.append(
            {
                "image": encode_image(crop_square(image, plan.x0, plan.y0, plan.side, size), quality=jpeg_quality),
                "keypoints": points.reshape(-1),
                "mask": encode_rle(crop_mask),
                "sides": sorted(set(plan.sides) | set(inside), key=kp.SIDES.index),
                "box": [plan.x0, plan.y0, plan.side],
                "latents": None,
            }
        )
    return crops
