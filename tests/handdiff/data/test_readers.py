"""The four dataset readers on the sample data: counts, canonical records, errors,
3D projection (checked with OpenCV), and keypoints that land on the drawn pixels."""

from __future__ import annotations

import numpy as np
import pytest

from handdiff.assets.sample_data import build_sample_data, check_manifest, read_manifest, sample_sources
from handdiff.data.images import load_image
from handdiff.data.readers import READERS, open_reader, scan_dataset
from handdiff.data.records import ERROR_SCHEMA, SOURCE_SCHEMA, to_table
from tests.handdiff.data.sample import read


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
