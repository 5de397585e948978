"""The bundled sample data (handdiff.assets.sample_data): the manifest counts what was written,
the broken files are broken the way they say, the build is repeatable, and check_manifest
catches a reader that misses a bad entry."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from handdiff.assets.sample_data import (
    build_sample_data,
    check_manifest,
    corrupt_jpeg,
    read_manifest,
    rgba_png,
    truncated_png,
    write_hagrid,
)
from handdiff.data.images import ImageError, decode_image


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_manifest_counts_every_file_each_dataset_wrote(sample_data):
    manifest = read_manifest(sample_data)
    for name, entry in manifest["datasets"].items():
        root = Path(sample_data) / entry["root"]
        assert entry["files"] == sum(p.is_file() for p in root.rglob("*")) > 0, name
    cases = {e["case"] for e in manifest["bad_entries"]}
    assert len(manifest["bad_entries"]) == len({e["image_id"] for e in manifest["bad_entries"]})  # one entry per bad image
    assert {e["dataset"] for e in manifest["bad_entries"]} == {"hagrid", "interhand26m", "reinterhand", "laion_human"} and len(cases) > 8


def test_broken_images_are_broken_as_a_failed_download_leaves_them():
    image = np.random.default_rng(0).integers(0, 255, (32, 48, 3), np.uint8)
    for data in (corrupt_jpeg(image), truncated_png(image)):
        with pytest.raises(ImageError):
            decode_image(data)
    assert decode_image(rgba_png(image)).shape == (32, 48, 3)  # transparency is read, not an error


def test_a_dataset_is_the_same_bytes_from_the_same_seed_and_other_bytes_from_another(tmp_path):
    write_hagrid(str(tmp_path / "a"), seed=1, per_gesture={"train": 1})
    write_hagrid(str(tmp_path / "b"), seed=1, per_gesture={"train": 1})
    write_hagrid(str(tmp_path / "c"), seed=2, per_gesture={"train": 1})
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_check_manifest_names_each_bad_entry_a_reader_got_wrong():
    manifest = {
        "bad_entries": [
            {"image_id": "hagrid/a.jpg", "case": "corrupt jpeg", "stage": "decode", "reason": "cannot decode"},
            {"image_id": "hagrid/b.jpg", "case": "nan box", "stage": "read", "reason": "non-finite"},
            {"image_id": "hagrid/c.jpg", "case": "rgba png", "stage": None, "reason": None},
        ]
    }
    right = [{"image_id": "hagrid/a.jpg", "stage": "decode", "reason": "cannot decode image: truncated"}]
    right.append({"image_id": "hagrid/b.jpg", "stage": "read", "reason": "box [0, 0, nan, 1]: non-finite value"})
    assert check_manifest(manifest, right, [{"image_id": "hagrid/c.jpg"}]) == []
    wrong = [{**right[0], "stage": "read"}]  # b missed, c not converted
    problems = check_manifest(manifest, wrong, [])
    assert [p.split(" ")[0] for p in problems] == ["hagrid/a.jpg", "hagrid/b.jpg", "hagrid/c.jpg"]
    assert "expected a converted record" in problems[2]


def test_build_writes_the_manifest_it_returns(tmp_path, sample_data):
    assert build_sample_data(str(tmp_path)) == read_manifest(str(tmp_path)) == read_manifest(sample_data)  # a second build: the same
