"""The four dataset readers on the sample data: counts, canonical records, errors,
3D projection (checked with OpenCV), and keypoints that land on the drawn pixels."""

from __future__ import annotations

import json
from collections import Counter

import cv2
import numpy as np
import pytest

from handdiff import storage
from handdiff.assets.sample_data import build_sample_data, check_manifest, read_manifest, sample_sources
from handdiff.data import keypoints as kp
from handdiff.data.images import load_image
from handdiff.data.readers import READERS, open_reader, scan_dataset
from handdiff.data.reading import DatasetNotFound
from handdiff.data.records import ERROR_SCHEMA, SOURCE_SCHEMA, keypoints_from_column, split_rows, to_table


def read(sample_data: str, name: str, **options):
    return split_rows(open_reader(**{**sample_sources(sample_data)[name], **options}))


def test_every_record_fits_the_schema_and_ids_are_unique(sample_data):
    for name in sample_sources(sample_data):
        records, errors = read(sample_data, name)
        table = to_table(records)
        assert table.schema == SOURCE_SCHEMA
        assert to_table(errors, ERROR_SCHEMA).num_rows == len(errors)
        ids = [r["image_id"] for r in records] + [e["image_id"] for e in errors]
        assert len(ids) == len(set(ids)), name
        dataset = sample_sources(sample_data)[name]["dataset"]
        assert all(i.startswith(f"{dataset}/") for i in ids)
        assert all(r["dataset"] == dataset for r in records)


def test_reading_twice_gives_the_same_records(sample_data):
    first, _ = read(sample_data, "hagrid")
    again, _ = read(sample_data, "hagrid")
    assert to_table(first).equals(to_table(again))


@pytest.mark.parametrize("name", ["hagrid", "hagrid_v1", "interhand26m", "reinterhand", "laion_human"])
def test_manifest_entries_give_their_expected_errors(sample_data, name):
    manifest = read_manifest(sample_data)
    records, errors = scan_dataset(open_reader(**sample_sources(sample_data)[name]))
    dataset = sample_sources(sample_data)[name]["dataset"]
    mine = {**manifest, "bad_entries": [e for e in manifest["bad_entries"] if e["dataset"] == dataset]}
    if name == "hagrid_v1":
        mine["bad_entries"] = []  # the v1 sample is clean
    assert check_manifest(mine, errors, records) == []
    # and nothing else failed: every error is a listed bad entry
    listed = {e["image_id"] for e in mine["bad_entries"]}
    assert {e["image_id"] for e in errors} <= listed


def test_manifest_covers_every_kind_of_bad_input(sample_data):
    cases = {e["case"] for e in read_manifest(sample_data)["bad_entries"]}
    assert {
        "corrupt_jpeg",
        "truncated_png",
        "missing_image",
        "missing_field",
        "zero_size_box",
        "nan_keypoints",
        "grayscale",
        "rgba",
        "malformed_json",
    } <= cases


def test_converted_images_decode_to_rgb(sample_data):
    manifest = read_manifest(sample_data)
    converted = [e for e in manifest["bad_entries"] if e["stage"] is None]
    assert {e["case"] for e in converted} == {"grayscale", "rgba"}
    records = {r["image_id"]: r for name in sample_sources(sample_data) for r in read(sample_data, name)[0]}
    for entry in converted:
        image = load_image(records[entry["image_id"]]["image_uri"])
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


# ------------------------------------------------------------------------- HaGRID


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


# ------------------------------------------------------------------ InterHand2.6M


def _interhand_raw(sample_data: str, split: str):
    base = f"{sample_data}/interhand26m/annotations/{split}/InterHand2.6M_{split}"
    return (json.loads(storage.read_text(f"{base}_{part}.json")) for part in ("data", "camera", "joint_3d"))


def test_interhand_projection_matches_opencv(sample_data):
    records, _ = read(sample_data, "interhand26m")
    checked = 0
    for split in ("train", "test"):
        data, cameras, joints = _interhand_raw(sample_data, split)
        by_file = {f"interhand26m/images/{split}/{im['file_name']}": im for im in data["images"]}
        for r in records:
            if r["split"] != split or r["image_id"] not in by_file:
                continue
            im = by_file[r["image_id"]]
            cam = {k: np.array(v[im["camera"]], np.float64) for k, v in cameras[str(im["capture"])].items()}
            world = np.array(joints[str(im["capture"])][str(im["frame_idx"])]["world_coord"], np.float64)
            rvec, _ = cv2.Rodrigues(cam["camrot"])
            tvec = -cam["camrot"] @ cam["campos"]
            K = np.array([[cam["focal"][0], 0, cam["princpt"][0]], [0, cam["focal"][1], cam["princpt"][1]], [0, 0, 1]])
            uv, _ = cv2.projectPoints(world, rvec, tvec, K, None)
            uv = uv.reshape(42, 2)
            keypoints = keypoints_from_column(r["keypoints"])
            # InterHand order per hand: thumb tip .. thumb base, index tip .., pinky, wrist last
            for side, offset in (("right", 0), ("left", 21)):
                hand = keypoints[kp.hand_slice(side)]
                valid = hand[:, 2] > 0
                if valid[0]:
                    np.testing.assert_allclose(hand[0, :2], uv[offset + 20], atol=1e-3)
                for finger in range(5):
                    for j in range(4):  # canonical base -> tip
                        if valid[1 + 4 * finger + j]:
                            np.testing.assert_allclose(hand[1 + 4 * finger + j, :2], uv[offset + 4 * finger + 3 - j], atol=1e-3)
            checked += 1
    assert checked >= 20


def test_interhand_validity_hand_types_and_pixels(sample_data):
    records, _ = read(sample_data, "interhand26m")
    bad = {e["image_id"] for e in read_manifest(sample_data)["bad_entries"]}
    for r in records:
        if r["image_id"] in bad:
            continue
        keypoints = keypoints_from_column(r["keypoints"])
        right, left = keypoints[kp.RIGHT_HAND], keypoints[kp.LEFT_HAND]
        if r["labels"] == ["right"]:
            assert right[:, 2].all() and not left[:, 2].any()
            assert r["hand_sides"] == ["right"]
        else:
            assert r["labels"] == ["interacting"] and r["hand_sides"] == ["both"]
            assert right[:, 2].any() and left[:, 2].any()
        assert (r["width"], r["height"]) == (334, 512)
        assert r["sequence"] in ("0000_neutral_relaxed", "0051_fist_interaction")
        # the hands are drawn in skin tones on a grey studio background
        image = load_image(r["image_uri"]).astype(int)
        x, y = np.round(right[[0, 5, 9, 13, 17], :2].mean(0)).astype(int)
        assert image[y, x, 0] - image[y, x, 2] > 15, r["image_id"]
        assert abs(image[2, 2, 0] - image[2, 2, 2]) < 8


# ------------------------------------------------------------------- Re:InterHand


def test_reinterhand_projection_mapping_and_release_masks(sample_data):
    records, _ = read(sample_data, "reinterhand")
    root = f"{sample_data}/reinterhand"
    checked = masks = 0
    for r in records:
        if r["frame"] >= 200:
            continue  # the bad-entry frames
        capture = r["sequence"]
        params = json.loads(storage.read_text(f"{root}/{capture}/Mugsy_cameras/cam_params.json"))[r["camera"]]
        keypoints = keypoints_from_column(r["keypoints"])
        for side in kp.SIDES:
            joints = np.array(json.loads(storage.read_text(f"{root}/{capture}/orig_fits/{side}/Keypoints/keypoint-{r['frame']:06d}.json")))
            names = kp.REINTERHAND_JOINTS
            wanted = ["Wrist"] + [f"{f}_{j}" for f in ("Thumb", "Index", "Middle", "Ring", "Pinky") for j in range(1, 5)]
            world = joints[[names.index(n) for n in wanted]]
            K = np.array([[params["focal"][0], 0, params["princpt"][0]], [0, params["focal"][1], params["princpt"][1]], [0, 0, 1]])
            uv, _ = cv2.projectPoints(world, cv2.Rodrigues(np.array(params["R"]))[0], np.array(params["t"], np.float64), K, None)
            np.testing.assert_allclose(keypoints[kp.hand_slice(side)][:, :2], uv.reshape(21, 2), atol=1e-3)
        assert r["split"] == ("test" if capture.startswith("m--20221215") else "train")
        if r["mask_uri"] is not None:
            mask = load_image(r["mask_uri"])[..., 0]
            for side in kp.SIDES:
                x, y = np.round(keypoints[kp.hand_slice(side)][[0, 5, 9, 13, 17], :2].mean(0)).astype(int)
                assert mask[y, x] > 127
            assert mask.mean() < 0.5 * 255  # the hands, not the whole frame
            masks += 1
        checked += 1
    assert checked == 18 and 0 < masks < checked  # one camera ships no masks


# -------------------------------------------------------------------- LAION-Human


def test_laion_human_people_prompts_and_provenance(sample_data):
    records, errors = read(sample_data, "laion_human")
    bad = {e["image_id"] for e in read_manifest(sample_data)["bad_entries"]}
    counts = Counter(r["person_count"] for r in records)
    assert counts[2] == 2 and counts[1] >= 10
    assert counts[0] == 3  # the empty room, and two all-zero poses (score 0: no person)
    photos = [r for r in records if r["caption"].startswith("portrait photo")]
    assert len(photos) == 2
    for r in records:
        source = json.loads(r["source"])
        if r["person_count"] and r["image_id"] not in bad:
            assert source["url"].endswith(f"{source['key']}.jpg")
            keypoints = keypoints_from_column(r["keypoints"])
            assert keypoints[kp.BODY, 2].max() > 0 and keypoints[17:, 2].sum() == 0
    # a file with a weak extra detection (score 0.05) holds one person, the confident one
    weak = next(r for r in records if r["image_id"].endswith("000000003.jpg"))
    assert weak["person_count"] == 1 and keypoints_from_column(weak["keypoints"])[kp.BODY, 2].min() > 0.05
    strict = {r["image_id"]: r for r in read(sample_data, "laion_human", min_person_score=0.0)[0]}
    assert strict[weak["image_id"]]["person_count"] == 2
    missing = [e for e in errors if e["image_id"].endswith("#000000017")]
    assert missing and missing[0]["reason"] == "missing field 'img_path'"


# -------------------------------------------------------------------------- S3


@pytest.mark.services
def test_every_reader_reads_the_same_from_s3(sample_data, s3_prefix):
    build_sample_data(s3_prefix)
    all_records, all_errors = [], []
    for name in sample_sources(s3_prefix):
        local_records, local_errors = scan_dataset(open_reader(**sample_sources(sample_data)[name]))
        s3_records, s3_errors = scan_dataset(open_reader(**sample_sources(s3_prefix)[name]))
        assert sorted((r["image_id"], r["width"]) for r in s3_records) == sorted((r["image_id"], r["width"]) for r in local_records), name
        assert sorted((e["image_id"], e["stage"]) for e in s3_errors) == sorted((e["image_id"], e["stage"]) for e in local_errors), name
        assert all(r["image_uri"].startswith("s3://") for r in s3_records)
        all_records += s3_records
        all_errors += s3_errors
    assert check_manifest(read_manifest(s3_prefix), all_errors, all_records) == []


def test_reader_registry():
    assert set(READERS) == {"hagrid", "interhand26m", "reinterhand", "laion_human"}
    with pytest.raises(ValueError, match="unknown dataset 'coco'"):
        open_reader("coco", root="x")
