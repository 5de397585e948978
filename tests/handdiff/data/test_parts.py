from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from handdiff.data.parts import (
    check_conservation,
    index_rows,
    part_uris,
    read_parts,
    top_error_reasons,
    write_index,
    write_part,
    written_ids,
)
from handdiff.data.records import ANNOTATION_SCHEMA, BOX_TYPE, ERROR_SCHEMA, error_row, to_table


def errors(*ids: str) -> pa.Table:
    return to_table([error_row(i, "hagrid", "decode", "broken") for i in ids], ERROR_SCHEMA)


def test_parts_are_named_by_their_ids_so_a_retry_rewrites_the_same_part(tmp_path):
    out = str(tmp_path / "errors")
    first = write_part(errors("a", "b"), out)
    assert write_part(errors("b", "a"), out) == first  # same ids, any order: same part
    write_part(errors("c"), out)
    assert len(part_uris(out)) == 2
    assert written_ids(out) == {"a", "b", "c"}
    assert sorted(read_parts(out).column("image_id").to_pylist()) == ["a", "b", "c"]
    assert not [p for p in (tmp_path / "errors").iterdir() if p.name.startswith(".tmp")]
    assert write_part(errors(), out) is None


def test_missing_parts_read_as_an_empty_table_of_the_schema(tmp_path):
    empty = read_parts(str(tmp_path / "none"), schema=ERROR_SCHEMA)
    assert empty.num_rows == 0 and empty.schema == ERROR_SCHEMA
    assert written_ids(str(tmp_path / "none")) == set()


def test_null_boxes_round_trip_through_parquet(tmp_path):
    """pyarrow 25 cannot read back a null fixed_size_list from Parquet: boxes are plain lists."""
    table = pa.table({"image_id": ["a", "b"], "person_box": pa.array([[1.0, 2.0, 3.0, 4.0], None], BOX_TYPE)})
    write_part(table, str(tmp_path))
    assert read_parts(str(tmp_path)).column("person_box").to_pylist() == [[1.0, 2.0, 3.0, 4.0], None]
    assert ANNOTATION_SCHEMA.field("person_box").type == BOX_TYPE


def test_index_skips_what_is_done_and_replaces_an_earlier_index(tmp_path):
    entries = [{"image_id": f"d/{i}", "x": i} for i in range(10)]
    seen, files = write_index(entries, str(tmp_path / "idx"), skip={"d/3", "d/4"}, rows_per_file=3)
    assert seen == 10 and len(files) == 3 and index_rows(files) == 8
    ids = [i for f in files for i in pq.read_table(f).column("image_id").to_pylist()]
    assert ids == [f"d/{i}" for i in range(10) if i not in (3, 4)]
    _, again = write_index(entries[:2], str(tmp_path / "idx"), skip=set(), rows_per_file=3)
    assert len(list((tmp_path / "idx").iterdir())) == len(again) == 1


def test_conservation_check_catches_duplicates_and_losses(tmp_path):
    write_part(errors("a", "b"), str(tmp_path / "errors"))
    write_part(errors("c"), str(tmp_path / "records"))
    assert check_conservation(str(tmp_path), ("records", "errors", "filtered"), 3) == {"records": 1, "errors": 2, "filtered": 0}
    with pytest.raises(RuntimeError, match="4 rows in"):
        check_conservation(str(tmp_path), ("records", "errors", "filtered"), 4)
    write_part(errors("a"), str(tmp_path / "filtered"))
    with pytest.raises(RuntimeError, match="written more than once"):
        check_conservation(str(tmp_path), ("records", "errors", "filtered"), 4)


def test_top_error_reasons_count_one_cause_once_whatever_the_path(tmp_path):
    rows = [error_row(f"d/{i}", "d", "read", f"image file not found: /data/x/{i}.jpg") for i in range(3)]
    rows += [error_row("d/9", "d", "decode", "cannot decode s3://b/k/9.jpg: truncated")]
    write_part(to_table(rows, ERROR_SCHEMA), str(tmp_path / "errors"))
    assert top_error_reasons(str(tmp_path)) == [("image file not found: <path>", 3), ("cannot decode <path>: truncated", 1)]
    assert top_error_reasons(str(tmp_path / "nothing")) == []
