"""The stages of the hand-crop job (``handdiff build-hand-crops``), Ray-free like the
annotation stages: functions run as tasks (the optional encoder, a model stage, is
``handdiff.models.encoders.EncodeCrops``)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from handdiff.data.hand_crops import HAND_CROP_SCHEMA, make_crops
from handdiff.data.images import ImageError, load_image
from handdiff.data.parts import read_part
from handdiff.data.work_rows import fail, new_row, work_schema, write_outputs

CROP_WORK_SCHEMA = work_schema(HAND_CROP_SCHEMA)


def crop_records(batch: pa.Table, size: int, margin: float, code_version: str) -> pa.Table:
    """Index entries (``{"part", "dataset"}`` of an annotated record) -> hand-crop rows.

    Each annotated part is read once per batch, only the selected rows of it.
    """
    entries = [(row["image_id"], json.loads(row["entry"])) for row in batch.to_pylist()]
    by_part: dict[str, list[str]] = defaultdict(list)
    for image_id, entry in entries:
        by_part[entry["part"]].append(image_id)
    records: dict[str, dict[str, Any]] = {}
    for part, ids in by_part.items():
        table = read_part(part)
        for record in table.filter(pc.is_in(table.column("image_id"), pa.array(ids))).to_pylist():
            records[record["image_id"]] = record
    rows = []
    for image_id, entry in entries:
        row = new_row(CROP_WORK_SCHEMA, image_id=image_id, dataset=entry["dataset"], crop_size=size, code_version=code_version)
        record = records.get(image_id)
        if record is None:
            fail(row, "read", f"not in its annotated part {entry['part']}")
        else:
            row.update(split=record["split"], gesture=record["gesture"], caption=record["caption"])
            try:
                row["crops"] = make_crops(record, load_image(record["image_uri"]), size, margin)
            except ImageError as err:
                fail(row, "decode", str(err))
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=CROP_WORK_SCHEMA)


def write_crops(batch: pa.Table, output: str) -> pa.Table:
    """Write the batch's hand-crop rows and errors under ``output``; returns counts."""
    return write_outputs(batch, output, HAND_CROP_SCHEMA)
