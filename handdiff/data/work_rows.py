"""Rows in flight through a job's stages, and how they end up written.

Every stage takes and returns a batch of work rows: the job's record fields plus a
``status``. A row that fails a stage gets ``status="error"`` with the stage and the
reason; later stages pass it through untouched. ``write_outputs`` finally splits a
batch into records, errors and filtered rows, each written as Parquet parts, so no
input row is ever dropped: rows in = records + errors + filtered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from handdiff.data.parts import write_part, written_ids
from handdiff.data.records import ERROR_SCHEMA, error_row, to_table

OK, ERROR, FILTERED = "ok", "error", "filtered"
OUTPUTS = ("records", "errors", "filtered")
STATUS_FIELDS = [
    pa.field("status", pa.string(), nullable=False),
    pa.field("error_stage", pa.string()),
    pa.field("error_reason", pa.string()),
]
COUNTS_SCHEMA = pa.schema([pa.field(name, pa.int64()) for name in (OK, ERROR, FILTERED)])


def done_ids(output: str) -> set[str]:
    """The image ids a job already wrote under ``output`` (records, errors or filtered): a rerun skips them."""
    return set().union(*(written_ids(f"{output}/{table}") for table in OUTPUTS))


def work_schema(record_schema: pa.Schema, extra: list[pa.Field] = ()) -> pa.Schema:
    """A job's work rows: its record fields (nullable while in progress), ``extra`` fields, the status."""
    return pa.schema([f.with_nullable(True) for f in record_schema] + list(extra) + STATUS_FIELDS)


def new_row(schema: pa.Schema, **fields: Any) -> dict[str, Any]:
    row = {name: None for name in schema.names}
    row.update(status=OK, **fields)
    return row


def fail(row: dict[str, Any], stage: str, reason: str) -> None:
    row.update(status=ERROR, error_stage=stage, error_reason=reason)


def for_ok_rows(batch: pa.Table, fn: Callable[[list[dict[str, Any]]], None], schema: pa.Schema) -> pa.Table:
    """Apply ``fn`` to the rows still ``ok`` (in place) and return the whole batch as ``schema``."""
    rows = batch.to_pylist()
    fn([r for r in rows if r["status"] == OK])
    return to_table(rows, schema)


def write_outputs(batch: pa.Table, output: str, record_schema: pa.Schema) -> pa.Table:
    """Write a batch's records (as ``record_schema``), errors and filtered rows as parts under
    ``<output>/{records,errors,filtered}/``; returns the batch's counts."""
    rows = batch.to_pylist()
    records = [r for r in rows if r["status"] == OK]
    problems = {
        status: [error_row(r["image_id"], r["dataset"], r["error_stage"], r["error_reason"]) for r in rows if r["status"] == status]
        for status in (ERROR, FILTERED)
    }
    write_part(to_table(records, record_schema, project=True), f"{output}/records")
    write_part(to_table(problems[ERROR], ERROR_SCHEMA), f"{output}/errors")
    write_part(to_table(problems[FILTERED], ERROR_SCHEMA), f"{output}/filtered")
    return pa.table({OK: [len(records)], ERROR: [len(problems[ERROR])], FILTERED: [len(problems[FILTERED])]}, schema=COUNTS_SCHEMA)
