from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from handdiff import storage
from handdiff.data.hand_crops import HAND_CROP_SCHEMA
from handdiff.data.images import decode_image
from handdiff.data.parts import part_uris, read_parts
from handdiff.data.records import ANNOTATION_SCHEMA, ERROR_SCHEMA
from handdiff.data.rle import decode_rle
from pipelines import build_hand_crops

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_selected_rows_are_all_cropped_once(hand_crops, annotated):
    records = read_parts(f"{hand_crops.output}/records", schema=HAND_CROP_SCHEMA)
    assert records.schema == HAND_CROP_SCHEMA
    errors = read_parts(f"{hand_crops.output}/errors", schema=ERROR_SCHEMA)
    ids = records.column("image_id").to_pylist() + errors.column("image_id").to_pylist()
    report = json.loads(storage.read_text(f"{hand_crops.output}/selection.json"))
    assert len(ids) == len(set(ids)) == sum(r["selected"] for r in report.values())
    assert report["hagrid"]["selected"] == 12 and report["interhand26m"]["selected"] == report["interhand26m"]["available"]
    # what the rows were made with, for train-hand to save in the model
    assert json.loads(storage.read_text(f"{hand_crops.output}/settings.json")) == {"size": 64, "margin": 0.25, "min_hand_points": 5}
    # the timing every data job logs: the whole run, start-up to the first written part, the steady rate after it
    from mlflow.tracking import MlflowClient

    client = MlflowClient(hand_crops.tracking.tracking_uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("handdiff-build-hand-crops").experiment_id], "attributes.run_name = 'crops-test'"
    )
    m = run.data.metrics
    assert m["rows_in"] == len(ids) and 0 < m["startup_seconds"] < m["seconds"] and m["images_per_second"] > 0


def test_only_train_images_are_cropped(hand_crops, annotated):
    records = read_parts(f"{hand_crops.output}/records", schema=HAND_CROP_SCHEMA)
    assert set(records.column("split").to_pylist()) == {"train"}
    report = json.loads(storage.read_text(f"{hand_crops.output}/selection.json"))
    for name in ("hagrid", "reinterhand"):  # HaGRID's test split and Re:InterHand's test capture are left out
        annotated_splits = read_parts(f"{annotated.output}/{name}/records", ["split"]).column("split").to_pylist()
        assert report[name]["other_splits"] == sum(s != "train" for s in annotated_splits) > 0
        assert report[name]["available"] == annotated_splits.count("train")


def test_hagrid_keeps_its_gesture_distribution(hand_crops, annotated):
    """Counted here from the rows themselves: the set's HaGRID gestures against the annotated train
    split's, each within one image of its share (largest-remainder quotas), and the report says so."""
    annotated_rows = read_parts(f"{annotated.output}/hagrid/records", ["image_id", "gesture", "split"]).to_pylist()
    gesture_of = {r["image_id"]: r["gesture"] for r in annotated_rows}
    train = [r["gesture"] for r in annotated_rows if r["split"] == "train"]
    out = (
        read_parts(f"{hand_crops.output}/records", ["image_id"]).to_pylist()
        + read_parts(f"{hand_crops.output}/errors", ["image_id"], ERROR_SCHEMA).to_pylist()
    )
    drawn = [gesture_of[r["image_id"]] for r in out if r["image_id"] in gesture_of]  # every drawn HaGRID image, cropped or not
    assert 0 < len(drawn) < len(train)  # a sample, not everything
    for gesture, n in Counter(train).items():
        assert abs(drawn.count(gesture) - n * len(drawn) / len(train)) < 1, gesture
    report = json.loads(storage.read_text(f"{hand_crops.output}/selection.json"))["hagrid"]
    assert report["share_selected"] == pytest.approx({g: n / len(drawn) for g, n in Counter(drawn).items()})
    assert report["share_available"] == pytest.approx({g: n / len(train) for g, n in Counter(train).items()})


def test_crops_hold_one_candidate_per_separate_hand_and_match_their_masks(hand_crops, annotated):
    annotated_rows = {
        r["image_id"]: r
        for name in ("hagrid", "interhand26m", "reinterhand")
        for r in read_parts(f"{annotated.output}/{name}/records", schema=ANNOTATION_SCHEMA).to_pylist()
    }
    for row in read_parts(f"{hand_crops.output}/records", schema=HAND_CROP_SCHEMA).to_pylist():
        source = annotated_rows[row["image_id"]]
        assert 1 <= len(row["crops"]) <= len(source["hand_sides"])
        assert sorted(s for c in row["crops"] for s in c["sides"]) == sorted(source["hand_sides"])
        assert row["caption"] == source["caption"] and row["crop_size"] == 64
        for crop in row["crops"]:
            assert decode_image(crop["image"]).shape == (64, 64, 3) and decode_rle(crop["mask"]).shape == (64, 64)
            points = np.asarray(crop["keypoints"]).reshape(42, 3)
            for offset, side in ((0, "left"), (21, "right")):
                assert (points[offset : offset + 21, 2].max() > 0) == (side in crop["sides"])


def test_a_rerun_crops_nothing_again(hand_crops):
    before = part_uris(f"{hand_crops.output}/records")
    again = hand_crops.model_copy(deep=True)
    again.tracking.run_name = "crops-test-again"
    assert build_hand_crops.run(again) == 0
    assert part_uris(f"{hand_crops.output}/records") == before
