"""Canonical source records (what the dataset readers yield) and error records.

The Arrow schemas here are the single definition of these tables; the README
documents them. A reader yields one dict per image, either a record (the
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

KEYPOINTS_TYPE = pa.list_(pa.float32(), NUM_KEYPOINTS * 3)
"""133 x (x_px, y_px, score) flattened row-major; see ``handdiff.data.keypoints``."""
BOX_TYPE = pa.list_(pa.float32(), 4)
"""(x, y, w, h) in pixels, top-left origin."""

SOURCE_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),  # "<dataset>/<path relative to the dataset root>"
        pa.field("dataset", pa.string(), nullable=False),  # hagrid | interhand26m | reinterhand | laion_human
        pa.field("split", pa.string(), nullable=False),  # train | val | test
        pa.field("image_uri", pa.string(), nullable=False),  # local path or s3:// URI of the image file
        pa.field("width", pa.int32()),  # pixels; null until known
        pa.field("height", pa.int32()),
        pa.field("keypoints", KEYPOINTS_TYPE),  # null where the dataset has none
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

ERROR_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),  # read | decode | keypoints | masks | caption | filter | ...
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
    if isinstance(out.get("keypoints"), np.ndarray):
        out["keypoints"] = out["keypoints"].astype(np.float32).reshape(-1)
    if out.get("hand_boxes") is not None:
        out["hand_boxes"] = [list(map(float, box)) for box in out["hand_boxes"]]
    return out


def to_table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema = SOURCE_SCHEMA) -> pa.Table:
    """Rows (dicts) as a table of exactly ``schema``; a missing or extra field is an error."""
    rows = [_arrow_ready(r) for r in rows]
    for r in rows:
        if set(r) != set(schema.names):
            raise KeyError(f"row {r.get('image_id')!r} fields differ from the schema: {sorted(set(r) ^ set(schema.names))}")
    return pa.Table.from_pylist(rows, schema=schema)


def split_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """(records, errors) from a reader's output."""
    records, errors = [], []
    for row in rows:
        (errors if is_error(row) else records).append(dict(row))
    return records, errors
