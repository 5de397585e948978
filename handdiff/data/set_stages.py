"""The stages of the set jobs (``build-hand-crops``, ``build-outpaint-set``, ``build-benchmark-set``), Ray-free
like the annotation stages: functions run as tasks. (The optional encoders, model stages,
are ``handdiff.models.encoders``.)

Both read the annotated records their index entries point at, make their rows from each
record and its image, and turn what cannot be made into error rows with a reason.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from handdiff.data.conditions import BENCHMARK_SCHEMA, benchmark_row, condition_from_record
from handdiff.data.hand_crops import HAND_CROP_SCHEMA, make_crops
from handdiff.data.images import ImageError, load_image
from handdiff.data.outpaint import OUTPAINT_SCHEMA, make_outpaint_row, outpaint_keypoints
from handdiff.data.parts import read_part
from handdiff.data.work_rows import fail, new_row, work_schema, write_outputs

CROP_WORK_SCHEMA = work_schema(HAND_CROP_SCHEMA)
OUTPAINT_WORK_SCHEMA = work_schema(OUTPAINT_SCHEMA)
BENCHMARK_WORK_SCHEMA = work_schema(BENCHMARK_SCHEMA)


def rows_from_records(batch: pa.Table, schema: pa.Schema, make: Callable[[dict, dict], None], **fields: Any) -> pa.Table:
    """Index entries (``{"part", "dataset"}`` of an annotated record) -> work rows of ``schema``.

    Each annotated part is read once per batch, only the selected rows of it. ``make(row,
    record)`` fills a row from its record and may raise ``ImageError`` (a ``decode`` error)
    or ``ValueError`` (a ``make`` error, e.g. a record without a body); ``fields`` go in every row.
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
        row = new_row(schema, image_id=image_id, dataset=entry["dataset"], **fields)
        record = records.get(image_id)
        if record is None:
            fail(row, "read", f"not in its annotated part {entry['part']}")
        else:
            row.update(split=record["split"], caption=record["caption"])
            try:
                make(row, record)
            except ImageError as err:
                fail(row, "decode", str(err))
            except ValueError as err:
                fail(row, "make", str(err))
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def crop_records(batch: pa.Table, size: int, margin: float, min_hand_points: int, code_version: str) -> pa.Table:
    """Index entries -> hand-crop work rows (``HAND_CROP_SCHEMA``)."""

    def make(row: dict, record: dict) -> None:
        row.update(gesture=record["gesture"], crops=make_crops(record, load_image(record["image_uri"]), size, margin, min_hand_points))

    return rows_from_records(batch, CROP_WORK_SCHEMA, make, crop_size=size, code_version=code_version)


def outpaint_records(batch: pa.Table, size: int, margin: float, fill: int, code_version: str) -> pa.Table:
    """Index entries -> outpaint work rows (``OUTPAINT_SCHEMA``); a record without a body or
    hands is an error with its reason (checked before its image is read)."""

    def make(row: dict, record: dict) -> None:
        outpaint_keypoints(record)  # before reading the image: a record without a body fails cheaply
        row.update(make_outpaint_row(record, load_image(record["image_uri"]), size, margin, fill))

    return rows_from_records(batch, OUTPAINT_WORK_SCHEMA, make, code_version=code_version)


def benchmark_records(batch: pa.Table, size: int, margin: float, seed: int, code_version: str) -> pa.Table:
    """Index entries -> benchmark work rows (``BENCHMARK_SCHEMA``): the condition and its real side."""

    def make(row: dict, record: dict) -> None:
        condition_from_record(record, size, margin, 0)  # before reading the image: a record without a body fails cheaply
        row.update(benchmark_row(record, load_image(record["image_uri"]), size, margin, seed))

    return rows_from_records(batch, BENCHMARK_WORK_SCHEMA, make, code_version=code_version)


def write_benchmark(batch: pa.Table, output: str) -> pa.Table:
    """Write the batch's benchmark rows and errors under ``output``; returns counts."""
    return write_outputs(batch, output, BENCHMARK_SCHEMA)


def write_crops(batch: pa.Table, output: str) -> pa.Table:
    """Write the batch's hand-crop rows and errors under ``output``; returns counts."""
    return write_outputs(batch, output, HAND_CROP_SCHEMA)


def write_outpaint(batch: pa.Table, output: str) -> pa.Table:
    """Write the batch's outpaint rows and errors under ``output``; returns counts."""
    return write_outputs(batch, output, OUTPAINT_SCHEMA)
