"""Generation conditions: what a generator is asked for, one row per image to make.

A condition is a person's 133 whole-body keypoints in the pixels of a ``size`` square, a
caption and a seed. Any annotated record with a body becomes one by the square person
framing (``handdiff.data.framing.person_square``), the same framing as the outpaint set and
the benchmark's real crops.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from handdiff.data import keypoints as kp
from handdiff.data.framing import person_square, points_to_square
from handdiff.data.records import KEYPOINTS_TYPE

CONDITION_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),  # the source record's id (one condition per source image)
        pa.field("keypoints", KEYPOINTS_TYPE, nullable=False),  # 399 floats: 133 x (x, y, score) in the square's pixels
        pa.field("caption", pa.string(), nullable=False),
        pa.field("size", pa.int32(), nullable=False),  # output side, pixels
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("dataset", pa.string()),
        pa.field("gesture", pa.string()),
        pa.field("box", pa.list_(pa.float32())),  # [x0, y0, side] of the square in the source image, px
    ]
)


def condition_from_record(record: dict, size: int, margin: float, seed: int) -> dict:
    """A ``CONDITION_SCHEMA`` row from an annotated record; ValueError without a body or caption."""
    keypoints = np.asarray(record.get("keypoints") or [], np.float32)
    if keypoints.size != kp.NUM_KEYPOINTS * 3 or record.get("person_box") is None or keypoints.reshape(-1, 3)[kp.BODY, 2].max() <= 0:
        raise ValueError("no body keypoints")
    if not record.get("caption"):
        raise ValueError("no caption")
    x0, y0, side = person_square(record["person_box"], margin, record["width"], record["height"])
    points = points_to_square(keypoints.reshape(kp.NUM_KEYPOINTS, 3), x0, y0, side, size)
    return {"image_id": record["image_id"], "keypoints": points.reshape(-1).tolist(), "caption": record["caption"], "size": size,
            "seed": seed, "dataset": record.get("dataset"), "gesture": record.get("gesture"), "box": [x0, y0, side]}  # fmt: skip
