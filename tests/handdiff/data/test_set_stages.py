"""The set jobs' stages (handdiff.data.set_stages) on annotated records: every index entry ends as
a row, made or failed with its stage and reason, and a record that cannot be used fails before
its image is read."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from handdiff.data.outpaint import NotOutpaintable, outpaint_keypoints
from handdiff.data.parts import part_uris, read_part
from handdiff.data.set_stages import benchmark_records, outpaint_records

pytestmark = [pytest.mark.services]  # the session's annotated sample data


def outpaintable(record: dict) -> bool:
    try:
        outpaint_keypoints(record)
    except NotOutpaintable:
        return False
    return True


@pytest.fixture
def entries(annotated, tmp_path) -> pa.Table:
    """Index entries for a copy of annotated records: one usable, one whose image is corrupt, one
    without a caption whose image does not exist, and an id its part does not hold."""
    records = [r for uri in sorted(part_uris(f"{annotated.output}/hagrid/records")) for r in read_part(uri).to_pylist()]
    good, corrupt, uncaptioned = [r for r in records if outpaintable(r)][:3]
    (tmp_path / "corrupt.jpg").write_bytes(b"not a jpeg")
    corrupt["image_uri"] = str(tmp_path / "corrupt.jpg")
    uncaptioned["caption"], uncaptioned["image_uri"] = "", str(tmp_path / "absent.jpg")
    schema = read_part(sorted(part_uris(f"{annotated.output}/hagrid/records"))[0]).schema
    pq.write_table(pa.Table.from_pylist([good, corrupt, uncaptioned], schema=schema), tmp_path / "part.parquet")
    ids = [good["image_id"], corrupt["image_id"], uncaptioned["image_id"], "not-annotated"]
    return pa.table({"image_id": ids, "entry": [json.dumps({"part": str(tmp_path / "part.parquet"), "dataset": "hagrid"})] * 4})


def test_each_entry_is_made_or_failed_with_its_stage_and_reason(entries):
    rows = outpaint_records(entries, size=64, margin=0.2, fill=127, code_version="test").to_pylist()
    assert [r["image_id"] for r in rows] == entries.column("image_id").to_pylist()  # rows in = rows out, in order
    made, corrupt, uncaptioned, absent = rows
    assert made["status"] == "ok" and made["image"] and made["caption"] and made["code_version"] == "test"
    assert (corrupt["status"], corrupt["error_stage"]) == ("error", "decode") and "cannot decode image" in corrupt["error_reason"]
    # judged by its record, before its image (which does not exist) is read
    assert (uncaptioned["error_stage"], uncaptioned["error_reason"]) == ("make", "no caption")
    assert (
        absent["error_stage"] == "read"
        and absent["error_reason"].startswith("not in its annotated part ")
        and "part.parquet" in absent["error_reason"]
    )


def test_benchmark_conditions_fail_as_the_crops_do_and_are_the_same_for_the_same_seed(entries):
    first = benchmark_records(entries, size=64, margin=0.2, seed=3, code_version="test").to_pylist()
    again = benchmark_records(entries, size=64, margin=0.2, seed=3, code_version="test").to_pylist()
    assert [r["status"] for r in first] == ["ok", "error", "error", "error"]
    assert first[1]["error_stage"] == "decode" and first[2]["error_stage"] == "make"  # judged by its record before its image
    assert first[0]["split"] in ("train", "test")
    assert first == again  # the same entries and seed: the same rows
