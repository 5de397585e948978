"""What the dataset readers share (handdiff.data.reading): a malformed entry becomes an error row
with its reason, never an exception, and the checks name what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from handdiff.data.reading import EntryError, Reader, check_box, finite_array, load_json, require, visible_in_image


class Toy(Reader):
    """A reader whose entries carry their own fate."""

    dataset = "toy"

    def __init__(self, entries: list[dict]):
        self._entries = entries

    def entries(self):
        yield from self._entries

    def _record(self, entry: dict) -> dict:
        width = require(entry, "width")[0]
        if entry.get("raise") == "entry":
            raise EntryError("the box lies outside the image")
        if entry.get("raise") == "index":
            return {"image_id": entry["image_id"], "first": entry["points"][5]}
        return {"image_id": entry["image_id"], "width": int(width)}


def test_a_reader_turns_each_bad_entry_into_an_error_row_with_its_reason():
    entries = [
        {"image_id": "good", "width": 4},
        {"image_id": "no-width"},
        {"image_id": "outside", "width": 4, "raise": "entry"},
        {"image_id": "short", "width": 4, "raise": "index", "points": [1, 2]},
        {"image_id": "bad-number", "width": "four"},
        {"image_id": "index-file", "dataset": "toy", "stage": "read", "reason": "file not found: index.json"},
    ]
    rows = list(Toy(entries))
    assert [r["image_id"] for r in rows] == [e["image_id"] for e in entries]  # one row per entry, in order
    assert rows[0] == {"image_id": "good", "width": 4}
    reasons = {r["image_id"]: r["reason"] for r in rows[1:]}
    assert all(r["stage"] == "read" and r["dataset"] == "toy" for r in rows[1:])
    assert reasons["no-width"] == "missing field 'width'"
    assert reasons["outside"] == "the box lies outside the image"
    assert reasons["short"].startswith("malformed entry: IndexError")
    assert reasons["bad-number"].startswith("malformed entry: ValueError") and "four" in reasons["bad-number"]
    assert reasons["index-file"] == "file not found: index.json"  # an error entry passes through as it is


def test_json_files_that_are_missing_or_malformed_say_which_and_where(tmp_path):
    (tmp_path / "good.json").write_text('{"a": [1, 2]}')
    (tmp_path / "bad.json").write_text('{"a": [1, 2}\n')
    assert load_json(str(tmp_path / "good.json")) == {"a": [1, 2]}
    with pytest.raises(EntryError, match=r"malformed JSON in .*bad\.json: .* at line 1 column 12"):
        load_json(str(tmp_path / "bad.json"))
    with pytest.raises(EntryError, match=r"file not found: .*absent\.json"):
        load_json(str(tmp_path / "absent.json"))


def test_arrays_must_have_the_shape_and_finite_numbers():
    assert finite_array([[1, 2], [3, 4]], (None, 2), "points").dtype == np.float64
    with pytest.raises(EntryError, match=r"points: shape \(2, 3\), expected \('N', 2\)"):
        finite_array([[1, 2, 3], [4, 5, 6]], (None, 2), "points")
    with pytest.raises(EntryError, match="non-finite points"):
        finite_array([[1, float("nan")]], (None, 2), "points")
    with pytest.raises(EntryError, match="points: not an array of numbers"):
        finite_array([["a", "b"]], (None, 2), "points")


@pytest.mark.parametrize(
    "box, message",
    [([1, 2, 3], "expected"), ([1, 2, "3", 4], "expected"), ([0, 0, float("inf"), 4], "non-finite"), ([0, 0, 0, 4], "zero-size")],
)
def test_boxes_are_four_finite_numbers_of_some_size(box, message):
    assert check_box([1, 2, 3, 4]) == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(EntryError, match=message):
        check_box(box, "hand box")


def test_points_inside_the_image_exclude_its_far_edges():
    points = np.array([[0, 0], [9.5, 4.0], [10, 4], [3, -0.1], [3, 7.99]])
    assert visible_in_image(points, width=10, height=8).tolist() == [True, True, False, False, True]
