"""Generation conditions: what a generator is asked for, one row per image to make.

A condition is a person's 133 whole-body keypoints in the pixels of a ``size`` square, a
caption and a seed. Any annotated record with a body becomes one by the square person
framing (``handdiff.data.framing.person_square``), the same framing as the outpaint set and
the benchmark's real crops.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pyarrow as pa

from handdiff.data import keypoints as kp
from handdiff.data.framing import crop_square, person_square, points_to_square
from handdiff.data.images import encode_image
from handdiff.data.parts import read_parts
from handdiff.data.records import KEYPOINTS_TYPE, RLE_TYPE, error_row
from handdiff.data.rle import decode_rle, encode_rle

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


BENCHMARK_SCHEMA = pa.schema(
    [
        *CONDITION_SCHEMA,
        pa.field("split", pa.string()),
        pa.field("real_image", pa.binary(), nullable=False),  # JPEG, size x size: the real person, framed as the condition
        pa.field("person_mask", RLE_TYPE, nullable=False),  # SAM person mask of real_image: the real side of FID fg
        pa.field("code_version", pa.string(), nullable=False),
    ]
)
"""The benchmark's conditions: a condition set (``generate`` reads it) that also holds the real side."""


def image_seed(image_id: str, seed: int) -> int:
    """A seed for one image that depends only on its id and the set's ``seed`` (not on order)."""
    return (int.from_bytes(hashlib.sha1(image_id.encode()).digest()[:4], "big") + seed) % 2**31


def benchmark_row(record: dict, image: np.ndarray, size: int, margin: float, seed: int) -> dict:
    """A ``BENCHMARK_SCHEMA`` row (without ``code_version``) from an annotated record and its image;
    ValueError without a body, caption or person mask."""
    row = condition_from_record(record, size, margin, image_seed(record["image_id"], seed))
    if record.get("person_mask") is None:
        raise ValueError("no person mask")
    x0, y0, side = row["box"]
    person = crop_square(decode_rle(record["person_mask"]).astype(np.uint8), x0, y0, side, size, cv2.INTER_NEAREST).astype(bool)
    return {
        **row,
        "split": record.get("split"),
        "real_image": encode_image(crop_square(image, x0, y0, side, size), quality=95),
        "person_mask": encode_rle(person),
    }


def condition_from_record(record: dict, size: int, margin: float, seed: int) -> dict:
    """A ``CONDITION_SCHEMA`` row from an annotated record; ValueError without a body or caption."""
    keypoints = np.asarray(record.get("keypoints") or [], np.float32)
    if keypoints.size != kp.NUM_KEYPOINTS * 3 or record.get("person_box") is None or keypoints.reshape(-1, 3)[kp.BODY, 2].max() <= 0:
        raise ValueError("no body keypoints")
    if not record.get("caption"):
        raise ValueError("no caption")
    x0, y0, side = person_square(record["person_box"], margin, record["width"], record["height"])
    points = points_to_square(keypoints.reshape(kp.NUM_KEYPOINTS, 3), x0, y0, side, size)
    return {
        "image_id": record["image_id"],
        "keypoints": points.reshape(-1).tolist(),
        "caption": record["caption"],
        "size": size,
        "seed": seed,
        "dataset": record.get("dataset"),
        "gesture": record.get("gesture"),
        "box": [x0, y0, side],
    }


def load_conditions(
    path: str, count: int | None = None, size: int = 512, margin: float = 0.1, seed: int = 0
) -> tuple[list[dict], list[dict]]:
    """The first ``count`` (all when None) rows of ``<path>/records`` as conditions, and an error
    row for each annotated record that cannot become one. ``path`` holds a condition set (its rows
    are the conditions) or an annotated dataset: record ``i`` becomes a ``size`` square framed
    with ``margin`` (``condition_from_record``), seeded ``seed + i``."""
    try:
        table = read_parts(f"{path}/records")
    except FileNotFoundError:
        raise FileNotFoundError(f"conditions.path: no records under {path}/records") from None
    rows = table.slice(0, count or table.num_rows).to_pylist()
    if "person_box" not in table.schema.names:  # already a condition set
        return [{name: r.get(name) for name in CONDITION_SCHEMA.names} for r in rows], []
    conditions, errors = [], []
    for i, record in enumerate(rows):
        try:
            conditions.append(condition_from_record(record, size, margin, seed + i))
        except ValueError as err:
            errors.append(error_row(record["image_id"], record.get("dataset"), "condition", str(err)))
    return conditions, errors
