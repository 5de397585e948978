"""The annotation stages in one process, without Ray."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from handdiff.annotation.stages import (
    WORK_SCHEMA,
    WholeBodyKeypoints,
    filter_people_and_hands,
    load_images,
    table_captions,
    to_records,
    write_parts,
)  # fmt: skip
from handdiff.assets.sample_data import sample_sources
from handdiff.data import keypoints as kp
from handdiff.data.parts import INDEX_SCHEMA, read_parts
from handdiff.data.readers import open_reader
from handdiff.data.records import ANNOTATION_SCHEMA, ERROR_SCHEMA, keypoints_from_column
from handdiff.data.rle import encode_rle
from handdiff.data.work_rows import ERROR, FILTERED, OK


def index_batch(reader, limit: int | None = None) -> pa.Table:
    entries = list(reader.entries())[:limit]
    return pa.Table.from_pylist([{"image_id": e["image_id"], "entry": json.dumps(e)} for e in entries], schema=INDEX_SCHEMA)


@pytest.fixture(scope="module")
def laion_rows(sample_data):
    options = sample_sources(sample_data)["laion_human"]
    return load_images(to_records(index_batch(open_reader(**options)), options, {"test": True}, "v0"))


def test_reader_and_decode_errors_become_error_rows_and_nothing_is_dropped(sample_data, laion_rows):
    rows = laion_rows.to_pylist()
    assert laion_rows.schema == WORK_SCHEMA and len(rows) == len(list(open_reader(**sample_sources(sample_data)["laion_human"]).entries()))
    by_stage = {}
    for r in rows:
        if r["status"] == ERROR:
            by_stage.setdefault(r["error_stage"], []).append(r["error_reason"])
    assert any("pose file not found" in reason for reason in by_stage["read"])
    assert any("image file not found" in reason for reason in by_stage["decode"])
    assert any("cannot decode image" in reason for reason in by_stage["decode"])
    good = [r for r in rows if r["status"] == OK]
    assert all(r["image_bytes"] and r["width"] > 0 for r in good)
    assert all(json.loads(r["annotators"]) == {"test": True} and r["code_version"] == "v0" for r in rows)


def test_size_mismatch_between_annotation_and_image_is_an_error(laion_rows):
    rows = laion_rows.to_pylist()
    good = next(r for r in rows if r["status"] == OK)
    good.update(width=good["width"] + 1, image_bytes=None)
    out = load_images(pa.Table.from_pylist([good], schema=WORK_SCHEMA)).to_pylist()[0]
    assert out["status"] == ERROR and "the annotation says" in out["error_reason"]


def test_keypoints_stage_flags_images_without_people_or_hands(laion_rows):
    rows = WholeBodyKeypoints()(laion_rows).to_pylist()
    by_caption = {json.loads(r["source"])["text"]: r for r in rows if r["source"]}
    assert by_caption["an empty room"]["error_reason"] == "no person detected"
    two = by_caption["two friends waving"]
    assert two["status"] == OK and two["person_count"] == 2  # faces and the dataset's poses agree
    portrait = by_caption["portrait photo astronaut"]
    assert portrait["status"] == ERROR and portrait["error_reason"] == "no hands detected"
    for r in rows:
        if r["status"] == OK:
            keypoints = keypoints_from_column(r["keypoints"])
            assert r["hand_sides"] and len(r["hand_boxes"]) == len(r["hand_sides"])
            for side, (x, y, w, h) in zip(r["hand_sides"], r["hand_boxes"], strict=True):
                hand = keypoints[kp.hand_slice(side)]
                assert np.allclose([x, y], hand[:, :2].min(0), atol=1e-3) and np.allclose([x + w, y + h], hand[:, :2].max(0), atol=1e-3)


def _row(**fields):
    row = {name: None for name in WORK_SCHEMA.names}
    row.update(image_id="laion_human/x.jpg", dataset="laion_human", split="train", image_uri="x.jpg", width=100, height=100,
               status=OK, hand_sides=["left"], hand_boxes=[[0, 0, 10, 10]], keypoints=np.zeros(399, np.float32),
               keypoints_source="mediapipe", hand_mask_source="sam", caption="c", caption_source="llava",
               annotators="{}", code_version="v0")  # fmt: skip
    row.update(fields)
    return row


def test_people_and_hands_filter():
    big, small = np.zeros((100, 100), bool), np.zeros((100, 100), bool)
    big[:60, :60] = True  # 3600 px
    small[:10, :10] = True  # 100 px
    rows = [
        _row(image_id="a", person_count=1, hand_masks=[encode_rle(big)]),
        _row(image_id="b", person_count=2, hand_masks=[encode_rle(big)]),
        _row(image_id="c", person_count=1, hand_masks=[encode_rle(small), encode_rle(small)]),
        _row(image_id="d", status=ERROR, error_stage="decode", error_reason="broken"),
    ]
    out = {r["image_id"]: r for r in filter_people_and_hands(pa.Table.from_pylist(rows, schema=WORK_SCHEMA)).to_pylist()}
    assert out["a"]["status"] == OK
    assert out["b"]["status"] == FILTERED and out["b"]["error_reason"] == "2 people, not 1"
    assert out["c"]["status"] == FILTERED and out["c"]["error_reason"] == "hand mask of 100 px, under 2500"
    assert out["d"]["status"] == ERROR  # errors pass through untouched


def test_caption_table_stage(tmp_path):
    table = tmp_path / "captions.csv"
    table.write_text("sequence,caption\nseq1,two hands\n")
    rows = [_row(image_id="a", sequence="seq1", caption=None), _row(image_id="b", sequence="seq9", caption=None)]
    out = {r["image_id"]: r for r in table_captions(pa.Table.from_pylist(rows, schema=WORK_SCHEMA), str(table)).to_pylist()}
    assert out["a"]["caption"] == "two hands" and out["a"]["caption_source"] == "table"
    assert out["b"]["status"] == ERROR and "no caption for sequence 'seq9'" in out["b"]["error_reason"]


def test_write_parts_splits_every_row_into_one_table(tmp_path):
    mask = np.ones((100, 100), bool)
    rows = [
        _row(image_id="ok", person_count=1, hand_masks=[encode_rle(mask)], person_box=None, image_bytes=b"x"),
        _row(image_id="bad", status=ERROR, error_stage="keypoints", error_reason="no hands detected"),
        _row(image_id="out", status=FILTERED, error_stage="filter", error_reason="2 people, not 1"),
    ]
    counts = write_parts(pa.Table.from_pylist(rows, schema=WORK_SCHEMA), str(tmp_path)).to_pylist()
    assert counts == [{OK: 1, ERROR: 1, FILTERED: 1}]
    records = read_parts(str(tmp_path / "records"))
    assert records.schema.names == ANNOTATION_SCHEMA.names  # work-only fields (image bytes, status) are not written
    assert records.column("image_id").to_pylist() == ["ok"]
    assert read_parts(str(tmp_path / "errors"), schema=ERROR_SCHEMA).to_pylist() == [
        {"image_id": "bad", "dataset": "laion_human", "stage": "keypoints", "reason": "no hands detected"}]
    assert read_parts(str(tmp_path / "filtered")).column("reason").to_pylist() == ["2 people, not 1"]
