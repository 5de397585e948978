"""HaGRID's reader (handdiff.data.hagrid) on the sample data: v2 and v1 layouts, pixels, sides."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from handdiff import storage
from handdiff.assets.sample_data import read_manifest
from handdiff.data import keypoints as kp
from handdiff.data.images import load_image
from handdiff.data.readers import open_reader
from handdiff.data.reading import DatasetNotFound
from handdiff.data.records import keypoints_from_column
from tests.handdiff.data.sample import read


def test_hagrid_counts_splits_and_gestures(sample_data):
    records, errors = read(sample_data, "hagrid")
    good = [r for r in records if r["image_id"] not in {e["image_id"] for e in read_manifest(sample_data)["bad_entries"]}]
    assert Counter((r["split"], r["gesture"]) for r in good) == {
        (s, g): n for s, n in (("train", 4), ("test", 3)) for g in ("palm", "fist", "peace", "like")
    }


def test_hagrid_boxes_and_landmarks_are_in_pixels(sample_data):
    records, _ = read(sample_data, "hagrid")
    raw = {}
    for split in ("train", "test"):
        for gesture in ("palm", "fist"):
            raw.update(json.loads(storage.read_text(f"{sample_data}/hagrid/annotations/{split}/{gesture}.json")))
    checked = 0
    for r in records:
        key = r["image_id"].rsplit("/", 1)[1].removesuffix(".jpg")
        if key not in raw or "labels" not in raw[key]:
            continue
        ann = raw[key]
        w, h = r["width"], r["height"]
        assert (w, h) == (288, 384)
        expected = [[x * w, y * h, bw * w, bh * h] for x, y, bw, bh in ann["bboxes"]]
        np.testing.assert_allclose(r["hand_boxes"], expected, rtol=1e-6)
        keypoints = keypoints_from_column(r["keypoints"])
        for landmarks, side in zip(ann["hand_landmarks"], r["hand_sides"]):
            np.testing.assert_allclose(keypoints[kp.hand_slice(side)][:, :2], np.array(landmarks) * [w, h], rtol=1e-5)
        assert keypoints[kp.BODY, 2].sum() == 0  # HaGRID has hands only
        checked += 1
    assert checked >= 10


def test_hagrid_keypoints_land_on_skin_and_sides_match_the_drawing(sample_data):
    """The synthetic people are drawn at their keypoints: a palm centre has the colour
    of the face (both skin), and the person's right hand is on the image's left."""
    records, _ = read(sample_data, "hagrid")
    bad = {e["image_id"] for e in read_manifest(sample_data)["bad_entries"]}
    checked = 0
    for r in records:
        if r["keypoints"] is None or r["image_id"] in bad or len(r["hand_sides"]) != 2:
            continue
        image = load_image(r["image_uri"]).astype(int)
        keypoints = keypoints_from_column(r["keypoints"])
        boxes = dict(zip(r["hand_sides"], r["hand_boxes"]))
        assert boxes["right"][0] < boxes["left"][0]
        source = json.loads(r["source"])
        assert source["handedness"] == "image_position"
        for side in kp.SIDES:
            hand = keypoints[kp.hand_slice(side)]
            palm = hand[[0, 5, 9, 13, 17], :2].mean(0)
            x0, y0, bw, bh = boxes[side]
            assert x0 <= palm[0] <= x0 + bw and y0 <= palm[1] <= y0 + bh
            checked += 1
        # the sample scenes draw both hands of a person with one skin tone
        left = image[tuple(np.round(keypoints[kp.LEFT_HAND][[0, 5, 9, 13, 17], :2].mean(0)[::-1]).astype(int))]
        right = image[tuple(np.round(keypoints[kp.RIGHT_HAND][[0, 5, 9, 13, 17], :2].mean(0)[::-1]).astype(int))]
        assert np.abs(left - right).max() < 30, (r["image_id"], left, right)
    assert checked >= 4


def test_hagrid_v1_uses_the_leading_hand(sample_data):
    records, errors = read(sample_data, "hagrid_v1")
    assert len(records) == 6 and not errors
    raw = {}
    for gesture in ("palm", "peace"):
        raw.update(json.loads(storage.read_text(f"{sample_data}/hagrid_v1/ann/{gesture}.json")))
    for r in records:
        ann = raw[r["image_id"].rsplit("/", 1)[1].removesuffix(".jpg")]
        gesturing = [label != "no_gesture" for label in ann["labels"]]
        assert r["hand_sides"][gesturing.index(True)] == ann["leading_hand"]
        # a two-handed gesture names no single leading hand: image position decides
        expected_rule = "leading_hand" if sum(gesturing) == 1 else "image_position"
        assert json.loads(r["source"])["handedness"] == expected_rule
        assert r["split"] == "train"


def test_hagrid_missing_annotation_root_is_a_config_error(tmp_path):
    with pytest.raises(DatasetNotFound, match="no HaGRID v2 annotation files"):
        list(open_reader("hagrid", images=str(tmp_path), annotations=str(tmp_path / "nope")))
