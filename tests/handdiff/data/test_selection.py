"""How a set draws its images (``handdiff.data.selection``), on small annotated parts written
here: only the allowed splits, a seeded sample without replacement, each stratum within one image
of its share, unusable records reported, every entry naming its part."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from handdiff.data.parts import write_part
from handdiff.data.records import ANNOTATION_SCHEMA
from handdiff.data.selection import Draw, EntrySelection, SourceSelection, select_entries, share, stratified_sample

GESTURES = ["like"] * 10 + ["palm"] * 6 + ["fist"] * 3 + [None]


def annotated(tmp_path, name: str, rows: list[dict], per_part: int = 7) -> str:
    """``rows`` (image_id, dataset, split, gesture, person_box) as parts under ``<tmp>/<name>/records``."""
    schema = ANNOTATION_SCHEMA.remove_metadata()
    schema = pa.schema([schema.field(name) for name in ("image_id", "dataset", "split", "gesture", "person_box")])
    for start in range(0, len(rows), per_part):
        write_part(pa.Table.from_pylist(rows[start : start + per_part], schema=schema), str(tmp_path / name / "records"))
    return str(tmp_path / name)


def hagrid_rows() -> list[dict]:
    train = [
        {"image_id": f"hagrid/{g}/{i}", "dataset": "hagrid", "split": "train", "gesture": g, "person_box": [0, 0, 9, 9]}
        for i, g in enumerate(GESTURES)
    ]
    test = [{"image_id": f"hagrid/test/{i}", "dataset": "hagrid", "split": "test", "gesture": "like", "person_box": None} for i in range(4)]
    return train + test


def test_a_stratified_sample_keeps_each_share_within_one_image():
    ids = [f"i{n}" for n in range(len(GESTURES))]
    for count in (1, 5, 7, 13, 19):
        chosen = stratified_sample(ids, GESTURES, count, seed=4)
        assert len(chosen) == count == len(set(chosen)) and set(chosen) <= set(ids)
        drawn = Counter(GESTURES[ids.index(i)] for i in chosen)
        for gesture, n in Counter(GESTURES).items():
            assert abs(drawn[gesture] - n * count / len(ids)) < 1, (count, gesture)


def test_the_sample_is_the_seeds_and_everything_when_asked_for_more():
    ids = [f"i{n}" for n in range(len(GESTURES))]
    assert stratified_sample(ids, GESTURES, 8, seed=1) == stratified_sample(ids, GESTURES, 8, seed=1)
    assert {tuple(sorted(stratified_sample(ids, GESTURES, 8, seed=s))) for s in range(6)} != {
        tuple(sorted(stratified_sample(ids, GESTURES, 8, seed=1)))
    }
    assert stratified_sample(ids, GESTURES, 50, seed=1) == ids


def test_only_the_allowed_splits_are_drawn_and_each_entry_names_its_part(tmp_path):
    path = annotated(tmp_path, "hagrid", hagrid_rows())
    entries, report, unusable = select_entries({"hagrid": SourceSelection(path, count=8, stratify_by="gesture")}, seed=0)
    assert len(entries) == 8 and all(e["image_id"].startswith("hagrid/") and "/test/" not in e["image_id"] for e in entries)
    assert report["hagrid"] == {**report["hagrid"], "available": 20, "selected": 8, "splits": ["train"], "other_splits": 4}
    assert "short_by" not in report["hagrid"] and unusable == []
    for entry in entries:  # the part it names holds it
        assert entry["image_id"] in pa.parquet.read_table(entry["part"], columns=["image_id"]).column("image_id").to_pylist()
    assert report["hagrid"]["share_available"] == pytest.approx({"like": 0.5, "palm": 0.3, "fist": 0.15, "None": 0.05})


def test_records_without_the_required_column_are_reported_not_drawn_and_a_short_source_says_so(tmp_path):
    path = annotated(tmp_path, "hagrid", hagrid_rows())
    entries, report, unusable = select_entries({"hagrid": SourceSelection(path, count=10, splits=("test",), required="person_box")}, seed=0)
    assert entries == [] and report["hagrid"]["available"] == 0 and report["hagrid"]["short_by"] == 10
    assert sorted(u["image_id"] for u in unusable) == [f"hagrid/test/{i}" for i in range(4)]


def test_sources_mix_by_count_and_a_missing_one_is_named(tmp_path):
    other = [{"image_id": f"ih/{i}", "dataset": "interhand26m", "split": "train", "gesture": None, "person_box": None} for i in range(5)]
    sources = {
        "hagrid": SourceSelection(annotated(tmp_path, "hagrid", hagrid_rows()), count=3),
        "interhand26m": SourceSelection(annotated(tmp_path, "ih", other)),
    }
    entries, report, _ = select_entries(sources, seed=2)
    assert Counter(e["dataset"] for e in entries) == {"hagrid": 3, "interhand26m": 5}
    with pytest.raises(FileNotFoundError, match="source laion: no annotated records under .*nowhere/records"):
        select_entries({"laion": SourceSelection(str(tmp_path / "nowhere"))}, seed=0)


def test_share_is_each_values_fraction():
    assert share(["a", "b", "a", None]) == {"None": 0.25, "a": 0.5, "b": 0.25}


def raw_entries() -> list[dict]:
    """A reader's entries: 20 train (by GESTURES), 10 test, one entry-level error."""
    train = [{"image_id": f"h/tr{i}", "split": "train", "gesture": g} for i, g in enumerate(GESTURES)]
    test = [{"image_id": f"h/te{i}", "split": "test", "gesture": "like"} for i in range(10)]
    return [*train, *test, {"image_id": "h/annotations/bad.json", "dataset": "hagrid", "stage": "read", "reason": "malformed JSON"}]


def test_annotate_draws_each_sets_images_oversampled_from_the_raw_entries_and_keeps_every_error():
    draws = [Draw(count=8, splits=("train",), stratify_by="gesture"), Draw(count=4, splits=("test",))]
    selection = EntrySelection(raw_entries(), draws, oversample=1.25)
    train = [i for i in selection.selected if "/tr" in i]
    test = [i for i in selection.selected if "/te" in i]
    assert len(train) == 10 and len(test) == 5 and len(set(selection.selected)) == 15  # count x 1.25 each
    drawn = Counter(GESTURES[int(i.removeprefix("h/tr"))] for i in train)
    for gesture, n in Counter(GESTURES).items():
        assert abs(drawn[gesture] - n * 10 / 20) < 1, gesture
    ids = [e["image_id"] for e in selection.entries()]
    assert ids[0] == "h/annotations/bad.json" and ids[1:] == selection.selected  # the error always, then the draw
    again = EntrySelection(raw_entries(), draws, oversample=1.25)
    assert again.selected == selection.selected and again.settings() == selection.settings()


def test_a_short_draw_draws_again_from_what_is_left_until_its_splits_run_out():
    draws = [Draw(count=8, splits=("train",)), Draw(count=4, splits=("test",))]
    selection = EntrySelection(raw_entries(), draws, oversample=1.0)
    first = list(selection.selected)
    assert selection.more([8, 4]) == {}  # nothing short: nothing drawn
    assert selection.more([5, 4]) == {0: 3}  # 3 short of 8: 3 more train images, none drawn before
    added = selection.selected[len(first) :]
    assert len(added) == 3 and all("/tr" in i and i not in first for i in added)
    assert selection.more([5, 4]) == {0: 3} and selection.more([5, 4]) == {0: 3}  # 17 of the 20 train images drawn now
    assert selection.more([5, 4]) == {0: 3} and selection.more([5, 4]) == {0: 0}  # exhausted: 0 added
    assert len(set(selection.selected)) == len(selection.selected) == 24


def test_a_stored_selection_is_resumed_and_one_naming_unknown_ids_is_refused():
    draws = [Draw(count=3, splits=None)]
    stored = ["h/te1", "h/tr4"]
    assert EntrySelection(raw_entries(), draws, 2.0, selected=stored).selected == stored
    with pytest.raises(ValueError, match="1 selected ids are no longer entries of the dataset, e.g. h/gone"):
        EntrySelection(raw_entries(), draws, 2.0, selected=["h/gone", "h/tr1"])
