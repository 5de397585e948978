"""Work rows (handdiff.data.work_rows): stages touch only the rows still ok, and a batch is
written as records, errors and filtered rows, each row in exactly one."""

from __future__ import annotations

import pyarrow as pa

from handdiff.data.parts import read_parts
from handdiff.data.records import ERROR_SCHEMA
from handdiff.data.work_rows import ERROR, FILTERED, OK, done_ids, fail, for_ok_rows, new_row, work_schema, write_outputs

RECORD = pa.schema([pa.field("image_id", pa.string(), nullable=False), pa.field("dataset", pa.string()), pa.field("value", pa.int64())])
WORK = work_schema(RECORD)


def batch() -> pa.Table:
    rows = [new_row(WORK, image_id=f"d/{i}", dataset="d", value=i) for i in range(4)]
    fail(rows[1], "decode", "truncated")
    rows[2].update(status=FILTERED, error_stage="filter", error_reason="2 people, not 1")
    return pa.Table.from_pylist(rows, schema=WORK)


def test_a_stage_sees_only_the_rows_still_ok():
    seen = []

    def double(rows):
        seen.extend(r["image_id"] for r in rows)
        for r in rows:
            r["value"] *= 2

    out = for_ok_rows(batch(), double, WORK).to_pylist()
    assert seen == ["d/0", "d/3"] and [r["value"] for r in out] == [0, 1, 2, 6]
    assert [r["status"] for r in out] == [OK, ERROR, FILTERED, OK]


def test_each_row_is_written_once_to_its_table_and_a_rerun_knows_them(tmp_path):
    counts = write_outputs(batch(), str(tmp_path), RECORD).to_pylist()
    assert counts == [{OK: 2, ERROR: 1, FILTERED: 1}]
    assert read_parts(str(tmp_path / "records")).column("image_id").to_pylist() == ["d/0", "d/3"]
    assert read_parts(str(tmp_path / "errors"), schema=ERROR_SCHEMA).to_pylist() == [
        {"image_id": "d/1", "dataset": "d", "stage": "decode", "reason": "truncated"}
    ]
    assert read_parts(str(tmp_path / "filtered")).column("reason").to_pylist() == ["2 people, not 1"]
    assert done_ids(str(tmp_path)) == {"d/0", "d/1", "d/2", "d/3"}
