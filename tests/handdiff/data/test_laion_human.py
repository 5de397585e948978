"""LAION-Human's reader (handdiff.data.laion_human): people from the pose files, prompts, provenance."""

from __future__ import annotations

import json
from collections import Counter

from handdiff.assets.sample_data import read_manifest
from handdiff.data import keypoints as kp
from handdiff.data.records import keypoints_from_column
from tests.handdiff.data.sample import read


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
