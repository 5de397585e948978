"""build-benchmark-set on the session's annotated HaGRID sample: test people only, by gesture."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from handdiff import storage
from handdiff.data.conditions import BENCHMARK_SCHEMA, CONDITION_SCHEMA, load_conditions
from handdiff.data.images import decode_image
from handdiff.data.parts import read_parts
from handdiff.data.records import ANNOTATION_SCHEMA, ERROR_SCHEMA
from handdiff.data.rle import decode_rle

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_test_people_are_drawn_by_gesture_and_bodiless_ones_are_errors(benchmark_conditions, annotated):
    annotated_rows = [
        r for r in read_parts(f"{annotated.output}/hagrid/records", schema=ANNOTATION_SCHEMA).to_pylist() if r["split"] == "test"
    ]
    records = read_parts(f"{benchmark_conditions.output}/records", schema=BENCHMARK_SCHEMA).to_pylist()
    errors = read_parts(f"{benchmark_conditions.output}/errors", schema=ERROR_SCHEMA).to_pylist()
    bodiless = {r["image_id"] for r in annotated_rows if r["person_box"] is None}
    assert {e["image_id"] for e in errors} == bodiless and all(e["reason"] == "no body keypoints" for e in errors)
    with_body = [r for r in annotated_rows if r["person_box"] is not None]
    assert len(records) == min(6, len(with_body)) and {r["split"] for r in records} == {"test"}
    report = json.loads(storage.read_text(f"{benchmark_conditions.output}/selection.json"))["hagrid"]
    assert report["other_splits"] > 0 and report["available"] == len(with_body)
    # the gestures drawn, counted from the rows: each within one image of its share of the test people
    available = Counter(r["gesture"] for r in with_body)
    drawn = Counter(r["gesture"] for r in records)
    for gesture, n in available.items():
        assert abs(drawn[gesture] - n * len(records) / len(with_body)) < 1, gesture


def test_each_condition_holds_its_real_side_and_a_stable_seed(benchmark_conditions):
    rows = read_parts(f"{benchmark_conditions.output}/records", schema=BENCHMARK_SCHEMA).to_pylist()
    # each image's seed comes from its id and the set's seed (3), not its row: what SHA-1 says of the id, here
    seeds = {r["image_id"]: r["seed"] for r in rows}
    assert seeds == {i: (int(hashlib.sha1(i.encode()).hexdigest()[:8], 16) + 3) % 2**31 for i in seeds}
    for row in rows:
        assert decode_image(row["real_image"]).shape == (64, 64, 3) and decode_rle(row["person_mask"]).any()
        assert row["size"] == 64
        points = np.asarray(row["keypoints"]).reshape(133, 3)
        assert (points[points[:, 2] > 0, :2] < 64).all() and (points[points[:, 2] > 0, :2] >= 0).all()


def test_generate_reads_it_as_a_condition_set(benchmark_conditions):
    conditions, errors = load_conditions(benchmark_conditions.output)
    assert errors == [] and conditions and set(conditions[0]) == set(CONDITION_SCHEMA.names)


def test_too_many_error_rows_fail_the_job_after_writing_them_with_the_top_reasons(benchmark_conditions, tmp_path, capsys):
    from handdiff.config import to_yaml
    from pipelines import build_benchmark_set

    errors = len(read_parts(f"{benchmark_conditions.output}/errors", schema=ERROR_SCHEMA))
    assert errors > 0
    config_file = tmp_path / "config.yaml"
    config_file.write_text(to_yaml(benchmark_conditions))
    out = tmp_path / "strict"
    code = build_benchmark_set.main(["--config", str(config_file), f"output={out}", "max_error_share=0", "tracking.run_name=strict"])
    assert code == 1
    (err,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]  # one line
    assert f"of {errors + 6} rows are errors" in err and "above max_error_share 0" in err and f"no body keypoints ({errors})" in err
    assert len(read_parts(f"{out}/errors", schema=ERROR_SCHEMA)) == errors  # written before failing
