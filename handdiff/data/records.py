"""The Arrow schemas of the tables handdiff writes, and helpers to build them.

- ``SOURCE_SCHEMA``: canonical source records, what the dataset readers yield;
- ``ANNOTATION_SCHEMA``: annotated images, what the annotate job writes;
- ``ERROR_SCHEMA``: errors (and filtered rows) of any job, with stage and reason.

These are the single definition of these tables; the README documents them. A reader yields one dict per image, either a record (the
``SOURCE_SCHEMA`` fields) or an error (the ``ERROR_SCHEMA`` fields, with
``stage`` and ``reason``), so that rows in = records + errors always holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from handdiff.data.keypoints import NUM_KEYPOINTS

# Fixed-length values are stored as plain lists (their lengths checked by ``to_table``):
# pyarrow 25 writes a null fixed_size_list to Parquet in a way it cannot read back.
KEYPOINTS_TYPE = pa.list_(pa.float32())
"""399 floats: 133 x (x_px, y_px, score) flattened row-major; see ``handdiff.data.keypoints``."""
BOX_TYPE = pa.list_(pa.float32())
"""4 floats: (x, y, w, h) in pixels, top-left origin."""
FIXED_LENGTHS = {"keypoints": NUM_KEYPOINTS * 3, "person_box": 4, "dataset_keypoints": NUM_KEYPOINTS * 3}
"""Columns whose non-null values have one length (box lists are checked per box)."""

SOURCE_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),  # "<dataset>/<path relative to the dataset root>"
        pa.field("dataset", pa.string(), nullable=False),  # hagrid | interhand26m | reinterhand | laion_human
        pa.field("split", pa.string(), nullable=False),  # train | val | test
        pa.field("image_uri", pa.string(), nullable=False),  # local path or s3:// URI of the image file
        pa.field("width", pa.int32()),  # pixels; null until known
        pa.field("height", pa.int32()),
        pa.field("keypoints", KEYPOINTS_TYPE),  # 399 floats; null where the dataset has none
        pa.field("hand_boxes", pa.list_(BOX_TYPE)),  # the dataset's hand boxes
        pa.field("hand_sides", pa.list_(pa.string())),  # per box: left | right | both | unknown (the person's side)
        pa.field("labels", pa.list_(pa.string())),  # per box: gesture (HaGRID) or hand type (InterHand)
        pa.field("gesture", pa.string()),  # HaGRID gesture class of the image
        pa.field("sequence", pa.string()),  # InterHand2.6M seq_name / Re:InterHand capture id
        pa.field("camera", pa.string()),
        pa.field("frame", pa.int32()),
        pa.field("person_count", pa.int32()),  # where the dataset says (LAION-Human poses)
        pa.field("caption", pa.string()),  # the dataset's own text, if any
        pa.field("mask_uri", pa.string()),  # the release's hand mask image, if any (Re:InterHand)
        pa.field("source", pa.string()),  # JSON of dataset-specific provenance (user_id, url, meta, ...)
    ]
)

RLE_TYPE = pa.struct([pa.field("size", pa.list_(pa.int32())), pa.field("counts", pa.string())])
"""A COCO compressed RLE mask: ``size`` = [height, width], ``counts`` as pycocotools writes it."""

ANNOTATION_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("image_uri", pa.string(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("gesture", pa.string()),
        pa.field("sequence", pa.string()),
        pa.field("camera", pa.string()),
        pa.field("frame", pa.int32()),
        pa.field("keypoints", KEYPOINTS_TYPE, nullable=False),  # 399 floats: 133 x (x_px, y_px, score), canonical order
        pa.field("keypoints_source", pa.string(), nullable=False),  # mediapipe | dataset | mediapipe+dataset_hands
        pa.field("person_count", pa.int32()),  # null for hand-only datasets
        pa.field("person_box", BOX_TYPE),  # around the whole-body keypoints, pixels
        pa.field("person_mask", RLE_TYPE),  # SAM, box prompt; null without a body
        pa.field("hand_boxes", pa.list_(BOX_TYPE), nullable=False),  # tight around each hand's keypoints
        pa.field("hand_sides", pa.list_(pa.string()), nullable=False),  # left | right, aligned with hand_boxes
        pa.field("hand_masks", pa.list_(RLE_TYPE), nullable=False),  # aligned with hand_boxes, 5x5-dilated
        pa.field("hand_mask_source", pa.string(), nullable=False),  # sam | release
        pa.field("caption", pa.string(), nullable=False),
        pa.field("caption_source", pa.string(), nullable=False),  # llava | table
        pa.field("annotators", pa.string(), nullable=False),  # JSON: model ids and settings of every annotator
        pa.field("code_version", pa.string(), nullable=False),
        pa.field("source", pa.string()),  # JSON: the reader's provenance and the dataset's own boxes, labels, text
    ]
)

ERROR_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),  # read | decode | keypoints | masks | caption | filter
        pa.field("reason", pa.string(), nullable=False),
    ]
)


def error_row(image_id: str, dataset: str, stage: str, reason: str) -> dict[str, Any]:
    return {"image_id": image_id, "dataset": dataset, "stage": stage, "reason": reason}


def is_error(row: Mapping[str, Any]) -> bool:
    return "reason" in row


def source_row(image_id: str, dataset: str, split: str, image_uri: str, **fields: Any) -> dict[str, Any]:
    """A record with every ``SOURCE_SCHEMA`` field (unset ones null)."""
    row = {name: None for name in SOURCE_SCHEMA.names}
    row.update(image_id=image_id, dataset=dataset, split=split, image_uri=image_uri)
    unknown = set(fields) - set(SOURCE_SCHEMA.names)
    if unknown:
        raise KeyError(f"not SOURCE_SCHEMA fields: {sorted(unknown)}")
    row.update(fields)
    if isinstance(row["source"], dict):
        row["source"] = json.dumps(row["source"], sort_keys=True)
    return row


def keypoints_from_column(value: Any) -> np.ndarray | None:
    """A ``keypoints`` cell (flat list or array) as (133, 3) float32, or None."""
    if value is None:
        return None
    return np.asarray(value, np.float32).reshape(NUM_KEYPOINTS, 3)


def _arrow_ready(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key, value in out.items():
        if isinstance(value, np.ndarray):
            out[key] = value.astype(np.float32).reshape(-1) if value.dtype.kind == "f" else value.tolist()
    if out.get("hand_boxes") is not None:
        out["hand_boxes"] = [list(map(float, box)) for box in out["hand_boxes"]]
    return out


def to_table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema = SOURCE_SCHEMA, project: bool = False) -> pa.Table:
    """Rows (dicts) as a table of exactly ``schema``. A missing field is an error, and so is
    an extra one unless ``project`` (then extra fields are dropped)."""
    rows = [_arrow_ready(r) for r in rows]
    for r in rows:
        missing, extra = set(schema.names) - set(r), set(r) - set(schema.names)
        if missing or (extra and not project):
            raise KeyError(f"row {r.get('image_id')!r} fields differ from the schema: {sorted(missing | (set() if project else extra))}")
        for name, length in FIXED_LENGTHS.items():
            if name in schema.names and r[name] is not None and len(r[name]) != length:
                raise ValueError(f"row {r.get('image_id')!r}: {name} has {len(r[name])} values, expected {length}")
        if "hand_boxes" in schema.names and any(len(box) != 4 for box in r["hand_boxes"] or []):
            raise ValueError(f"row {r.get('image_id')!r}: every hand box needs 4 values")
    return pa.Table.from_pylist([{k: r[k] for k in schema.names} for r in rows], schema=schema)


def split_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """(records, errors) from a reader's output."""
    records, errors = [], []
    for row in rows:
        (errors if is_error(row) else records).append(dict(row))
    return records, errors
