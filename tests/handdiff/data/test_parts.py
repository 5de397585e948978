from __future__ import annotations

import pyarrow as pa

from handdiff.data.parts import part_uris, read_parts, write_part, written_ids
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
