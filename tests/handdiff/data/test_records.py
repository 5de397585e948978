"""The canonical tables (handdiff.data.records): a row of the wrong shape never becomes a table."""

from __future__ import annotations

import numpy as np
import pytest

from handdiff.data.records import ERROR_SCHEMA, SOURCE_SCHEMA, error_row, is_error, keypoints_from_column, source_row, split_rows, to_table


def row(**changes) -> dict:
    return {**source_row("hagrid/a.jpg", "hagrid", "train", "/data/a.jpg"), **changes}


def test_a_source_row_becomes_a_table_of_exactly_the_schema():
    table = to_table([row(keypoints=np.ones((133, 3)), hand_boxes=[np.array([1, 2, 3, 4])])])
    assert table.schema == SOURCE_SCHEMA and table.num_rows == 1
    assert table.column("keypoints").to_pylist()[0] == [1.0] * 399 and table.column("hand_boxes").to_pylist()[0] == [[1, 2, 3, 4]]
    assert keypoints_from_column(table.column("keypoints").to_pylist()[0]).shape == (133, 3) and keypoints_from_column(None) is None


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"keypoints": [0.0] * 398}, ValueError, "keypoints has 398 values, expected 399"),
        ({"hand_boxes": [[1, 2, 3]]}, ValueError, "every hand box needs 4 values"),
        ({"surprise": 1}, KeyError, "surprise"),
    ],
)
def test_a_row_of_the_wrong_shape_is_refused_naming_it(changes, error, message):
    with pytest.raises(error, match=message):
        to_table([row(**changes)])


def test_extra_fields_are_dropped_only_when_asked_and_errors_split_from_records():
    assert to_table([row(surprise=1)], project=True).num_rows == 1
    bad = error_row("hagrid/b.jpg", "hagrid", "decode", "truncated")
    assert is_error(bad) and not is_error(row()) and to_table([bad], ERROR_SCHEMA).column("reason").to_pylist() == ["truncated"]
    records, errors = split_rows([row(), bad])
    assert [r["image_id"] for r in records] == ["hagrid/a.jpg"] and errors == [bad]
