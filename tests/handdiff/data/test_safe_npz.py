"""Pose files with pickled object arrays are read without running code from storage."""

from __future__ import annotations

import io
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from handdiff.data.readers import open_reader
from handdiff.data.records import split_rows
from handdiff.data.safe_npz import load_npz


class RunsCode:
    """What an attacker pickles: unpickling it calls ``os.system``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def people(*extra) -> np.ndarray:
    """A HumanSD pose file's ``arr_0``: per-person dicts (object array)."""
    persons = [{"keypoints": np.full((17, 3), 0.5, np.float32), "score": np.float32(0.9), "bbox": [1.0, 2.0, 3.0, 4.0, 0.8]}, *extra]
    return np.array(persons, dtype=object)


def test_object_and_plain_arrays_read_as_numpy_reads_them():
    data = npz(
        arr_0=people({"keypoints": np.zeros((17, 3)), "score": 0.1, "name": "b", "nested": {"t": (1, 2)}}), plain=np.arange(6).reshape(2, 3)
    )
    ours = load_npz(data)
    theirs = np.load(io.BytesIO(data), allow_pickle=True)
    assert set(ours) == set(theirs.files) == {"arr_0", "plain"}
    np.testing.assert_array_equal(ours["plain"], theirs["plain"])
    for got, want in zip(ours["arr_0"], theirs["arr_0"], strict=True):
        assert got.keys() == want.keys()
        np.testing.assert_array_equal(got["keypoints"], want["keypoints"])
        assert got["score"] == want["score"] and type(got["score"]) is type(want["score"])
    assert ours["arr_0"][1]["nested"] == {"t": (1, 2)}


def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    crafted = npz(arr_0=people({"keypoints": RunsCode(marker)}))
    np.load(io.BytesIO(crafted), allow_pickle=True)["arr_0"]  # what allow_pickle would do: the file is a real exploit
    assert marker.exists()
    marker.unlink()

    with pytest.raises(pickle.UnpicklingError, match=r"refused to unpickle (posix|os)\.system"):
        load_npz(crafted)
    assert not marker.exists()
    with pytest.raises(ValueError, match="not an npz archive"):
        load_npz(b"not a zip")


def test_a_crafted_laion_human_pose_file_is_an_error_row(sample_data, tmp_path):
    root = tmp_path / "laion_human"
    shutil.copytree(Path(sample_data) / "laion_human", root)
    before, before_errors = split_rows(open_reader(dataset="laion_human", root=str(root)))
    victim = next(r for r in before if r["person_count"] == 1)
    pose = next(root.glob(f"pose/*/{Path(victim['image_uri']).stem}.npz"))
    marker = tmp_path / "ran"
    pose.write_bytes(npz(arr_0=people({"keypoints": RunsCode(marker)})))

    records, errors = split_rows(open_reader(dataset="laion_human", root=str(root)))
    assert not marker.exists()
    (error,) = [e for e in errors if e["image_id"] == victim["image_id"]]
    assert "refused to unpickle" in error["reason"] and str(pose) in error["reason"]
    assert len(records) + len(errors) == len(before) + len(before_errors)  # nothing dropped
    assert victim["image_id"] not in {r["image_id"] for r in records}
