"""The annotation stages in one process, without Ray."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from handdiff.annotation.stages import (
    WORK_SCHEMA,
    Plan,
    WholeBodyKeypoints,
    filter_hand_pixels,
    filter_people,
    load_images,
    prefilter_people,
    table_captions,
    to_records,
    write_parts,
)
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
    return load_images(to_records(index_batch(open_reader(**options)), options, {"test": True}, "v0", Plan(output="unused", filter=True)))


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
    assert all(Plan.of(r) == Plan(output="unused", filter=True) for r in rows)  # error rows too: they are written by it


def test_size_mismatch_between_annotation_and_image_is_an_error(laion_rows):
    rows = laion_rows.to_pylist()
    good = next(r for r in rows if r["status"] == OK)
    good.update(width=good["width"] + 1, image_bytes=None)
    out = load_images(pa.Table.from_pylist([good], schema=WORK_SCHEMA)).to_pylist()[0]
    assert out["status"] == ERROR and "the annotation says" in out["error_reason"]


def test_keypoints_stage_flags_images_without_people_or_hands(laion_rows):
    stage = WholeBodyKeypoints(mediapipe=False)  # loads Holistic at the first row planned for it
    assert stage.holistic is None
    rows = stage(laion_rows).to_pylist()
    assert stage.holistic is not None
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


def test_rows_planned_for_dataset_keypoints_take_the_datasets_own(laion_rows):
    rows = laion_rows.to_pylist()
    plan = Plan(output="unused", keypoints="dataset").to_json()
    for r in rows:
        r["plan"] = plan
    stage = WholeBodyKeypoints(mediapipe=False)
    out = [r for r in stage(pa.Table.from_pylist(rows, schema=WORK_SCHEMA)).to_pylist() if r["error_stage"] == "keypoints"]
    assert stage.holistic is None  # no row asked for Mediapipe
    # LAION-Human's own poses are 17 body points: "no hands", where Holistic found some
    assert out and {r["error_reason"] for r in out} <= {"no hands detected", "the dataset has no keypoints for this image"}
    assert "no hands detected" in {r["error_reason"] for r in out}


def _row(**fields):
    row = {name: None for name in WORK_SCHEMA.names}
    row.update(
        image_id="laion_human/x.jpg",
        dataset="laion_human",
        split="train",
        image_uri="x.jpg",
        width=100,
        height=100,
        status=OK,
        hand_sides=["left"],
        hand_boxes=[[0, 0, 10, 10]],
        keypoints=np.zeros(399, np.float32),
        keypoints_source="mediapipe",
        hand_mask_source="sam",
        caption="c",
        caption_source="llava",
        annotators="{}",
        code_version="v0",
        plan=Plan(output="out", filter=True).to_json(),
    )
    row.update(fields)
    return row


def test_who_the_datasets_own_poses_count_as_too_many_people_is_filtered_before_any_model():
    rows = [
        _row(image_id="two", dataset_person_count=2),
        _row(image_id="one", dataset_person_count=1),
        _row(image_id="none", dataset_person_count=0),  # Mediapipe may still find one: left to the later filter
        _row(image_id="unknown", dataset_person_count=None),
        _row(image_id="other", dataset_person_count=3, plan=Plan(output="out").to_json()),  # not LAION-Human
        _row(image_id="broken", dataset_person_count=2, status=ERROR, error_stage="decode", error_reason="broken"),
    ]
    out = {r["image_id"]: r for r in prefilter_people(pa.Table.from_pylist(rows, schema=WORK_SCHEMA), people=1).to_pylist()}
    assert out["two"]["status"] == FILTERED and out["two"]["error_reason"] == "2 people in the dataset's poses, not 1"
    assert [out[i]["status"] for i in ("one", "none", "unknown", "other", "broken")] == [OK, OK, OK, OK, ERROR]


def test_the_people_filter_runs_on_the_count_and_the_hand_filter_on_the_mask_pixels():
    big, small = np.zeros((100, 100), bool), np.zeros((100, 100), bool)
    big[:60, :60] = True  # 3600 px
    small[:10, :10] = True  # 100 px
    rows = [
        _row(image_id="a", person_count=1, hand_masks=[encode_rle(big)]),
        _row(image_id="b", person_count=2, hand_masks=[encode_rle(big)]),
        _row(image_id="c", person_count=1, hand_masks=[encode_rle(small), encode_rle(small)]),
        _row(image_id="d", status=ERROR, error_stage="decode", error_reason="broken"),
        _row(image_id="e", person_count=2, hand_masks=[encode_rle(small)], plan=Plan(output="out").to_json()),  # not LAION-Human
    ]
    people = {r["image_id"]: r for r in filter_people(pa.Table.from_pylist(rows, schema=WORK_SCHEMA)).to_pylist()}
    assert [people[i]["status"] for i in "acde"] == [OK, OK, ERROR, OK]  # errors pass through untouched
    assert people["b"]["status"] == FILTERED and people["b"]["error_reason"] == "2 people, not 1"
    hands = {r["image_id"]: r for r in filter_hand_pixels(pa.Table.from_pylist(rows, schema=WORK_SCHEMA)).to_pylist()}
    assert [hands[i]["status"] for i in "abde"] == [OK, OK, ERROR, OK]  # "b" was the people filter's to drop
    # the union of c's two identical 100 px masks is 100 px
    assert hands["c"]["status"] == FILTERED and hands["c"]["error_reason"] == "hand mask of 100 px, under 2500"


def test_caption_table_stage(tmp_path):
    table = tmp_path / "captions.csv"
    table.write_text("sequence,caption\nseq1,two hands\n")
    plan = Plan(output="out", keypoints="dataset", captions="table", caption_table=str(table)).to_json()
    rows = [
        _row(image_id="a", sequence="seq1", caption=None, plan=plan),
        _row(image_id="b", sequence="seq9", caption=None, plan=plan),
        _row(image_id="c", sequence="seq1", caption=None),
    ]  # planned for LLaVA: not this stage's
    out = {r["image_id"]: r for r in table_captions(pa.Table.from_pylist(rows, schema=WORK_SCHEMA)).to_pylist()}
    assert out["a"]["caption"] == "two hands" and out["a"]["caption_source"] == "table"
    assert out["c"]["caption"] is None and out["c"]["status"] == OK
    assert out["b"]["status"] == ERROR and "no caption for sequence 'seq9'" in out["b"]["error_reason"]


def test_write_parts_splits_every_row_into_one_table_of_its_dataset(tmp_path):
    mask = np.ones((100, 100), bool)
    here, other = Plan(output=str(tmp_path)).to_json(), Plan(output=str(tmp_path / "other")).to_json()
    rows = [
        _row(image_id="ok", person_count=1, hand_masks=[encode_rle(mask)], person_box=None, image_bytes=b"x", plan=here),
        _row(image_id="bad", status=ERROR, error_stage="keypoints", error_reason="no hands detected", plan=here),
        _row(image_id="elsewhere", person_count=1, hand_masks=[encode_rle(mask)], plan=other),
        _row(image_id="out", status=FILTERED, error_stage="filter", error_reason="2 people, not 1", plan=here),
    ]
    counts = write_parts(pa.Table.from_pylist(rows, schema=WORK_SCHEMA)).to_pylist()
    assert counts == [{OK: 1, ERROR: 1, FILTERED: 1}, {OK: 1, ERROR: 0, FILTERED: 0}]
    assert read_parts(str(tmp_path / "other" / "records")).column("image_id").to_pylist() == ["elsewhere"]
    records = read_parts(str(tmp_path / "records"))
    assert records.schema.names == ANNOTATION_SCHEMA.names  # work-only fields (image bytes, status) are not written
    assert records.column("image_id").to_pylist() == ["ok"]
    assert read_parts(str(tmp_path / "errors"), schema=ERROR_SCHEMA).to_pylist() == [
        {"image_id": "bad", "dataset": "laion_human", "stage": "keypoints", "reason": "no hands detected"}
    ]
    assert read_parts(str(tmp_path / "filtered")).column("reason").to_pylist() == ["2 people, not 1"]
