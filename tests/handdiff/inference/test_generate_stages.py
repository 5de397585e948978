"""The generate job's stages (handdiff.inference.generate_stages), Ray-free: conditions to work
rows, the generator stage, the writes; every condition ends as an image or an error row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from handdiff.data import keypoints as kp
from handdiff.data.images import decode_image, encode_image
from handdiff.data.parts import read_parts, write_part
from handdiff.inference.generate_stages import GENERATION_SCHEMA, GenerateImages, conditions_to_rows, write_generated


def entries(conditions: dict[str, dict]) -> pa.Table:
    return pa.table({"image_id": list(conditions), "entry": [json.dumps(c) for c in conditions.values()]})


def condition(**changes) -> dict:
    keypoints = np.zeros((kp.NUM_KEYPOINTS, 3), np.float32).reshape(-1).tolist()
    return {"dataset": "hagrid", "gesture": "palm", "seed": 1, "caption": "a person", "size": 16, "keypoints": keypoints, **changes}


def test_a_condition_that_cannot_be_generated_is_a_read_error_with_its_reason():
    rows = conditions_to_rows(
        entries(
            {
                "good": condition(),
                "short": condition(keypoints=[1.0, 2.0, 3.0]),
                "nan": condition(keypoints=[float("nan")] * kp.NUM_KEYPOINTS * 3),
                "no-caption": condition(caption=""),
            }
        ),
        "oracle",
        "v1",
    ).to_pylist()
    good, short, nan, uncaptioned = rows
    assert good["status"] == "ok" and len(good["keypoints"]) == kp.NUM_KEYPOINTS * 3 and good["method"] == "oracle"
    assert (short["error_stage"], short["error_reason"]) == ("read", f"keypoints: expected {kp.NUM_KEYPOINTS * 3} finite floats, got 3")
    assert nan["error_stage"] == "read" and uncaptioned["error_reason"] == "condition needs caption, size and seed"


def test_generated_images_are_written_beside_their_metadata_and_a_failed_batch_is_errors(tmp_path):
    real = {name: np.full((16, 16, 3), value, np.uint8) for name, value in (("a", 40), ("b", 200))}
    write_part(
        pa.table({"image_id": list(real), "real_image": [encode_image(i, "PNG") for i in real.values()]}),
        str(tmp_path / "conditions" / "records"),
    )
    stage = GenerateImages("oracle", {"conditions": str(tmp_path / "conditions")})
    work = stage(conditions_to_rows(entries({"a": condition(), "b": condition(seed=2), "bad": condition(size=None)}), "oracle", "v1"))
    counts = write_generated(work, str(tmp_path / "out")).to_pylist()
    assert counts == [{"ok": 2, "error": 1, "filtered": 0}]
    records = read_parts(str(tmp_path / "out" / "records"), schema=GENERATION_SCHEMA).to_pylist()
    assert sorted(r["image_id"] for r in records) == ["a", "b"]
    for record in records:
        assert np.array_equal(decode_image(Path(record["image_uri"]).read_bytes()), real[record["image_id"]])  # the oracle's image, as PNG
        assert json.loads(record["models"]) == {"conditions": str(tmp_path / "conditions")} and record["code_version"] == "v1"
    # a batch whose generator raises: every row an error naming the exception, nothing lost
    failed = stage(conditions_to_rows(entries({"unknown": condition()}), "oracle", "v1")).to_pylist()
    assert failed[0]["status"] == "error" and failed[0]["error_stage"] == "generate" and failed[0]["error_reason"].startswith("KeyError: ")
