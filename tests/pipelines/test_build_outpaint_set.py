"""build-outpaint-set on the session's annotated sample data (LAION-Human and HaGRID people)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handdiff import storage
from handdiff.data import keypoints as kp
from handdiff.data.images import decode_image
from handdiff.data.outpaint import OUTPAINT_SCHEMA
from handdiff.data.parts import part_uris, read_parts
from handdiff.data.records import ANNOTATION_SCHEMA, ERROR_SCHEMA
from handdiff.data.rle import decode_rle
from pipelines import build_outpaint_set

pytestmark = [pytest.mark.slow, pytest.mark.services]


def annotated_train(annotated) -> dict[str, dict]:
    return {
        r["image_id"]: r
        for name in ("laion_human", "hagrid")
        for r in read_parts(f"{annotated.output}/{name}/records", schema=ANNOTATION_SCHEMA).to_pylist()
        if r["split"] == "train"
    }


def test_every_train_record_is_one_row_or_one_error_with_its_reason(outpaint_set, annotated):
    records = read_parts(f"{outpaint_set.output}/records", schema=OUTPAINT_SCHEMA)
    errors = read_parts(f"{outpaint_set.output}/errors", schema=ERROR_SCHEMA).to_pylist()
    assert records.schema == OUTPAINT_SCHEMA and records.num_rows > 0
    expected = annotated_train(annotated)
    ids = records.column("image_id").to_pylist() + [e["image_id"] for e in errors]
    assert sorted(ids) == sorted(expected)  # rows in = rows out + errors, test splits never drawn
    for error in errors:
        record = expected[error["image_id"]]
        body = np.asarray(record["keypoints"] or np.zeros(399), np.float32).reshape(133, 3)[kp.BODY, 2].max() > 0
        assert error["reason"] == ("no hand masks" if body else "no body keypoints"), error
        assert not (body and record["hand_masks"])
    report = json.loads(storage.read_text(f"{outpaint_set.output}/selection.json"))
    assert report["hagrid"]["other_splits"] > 0


def test_rows_hold_the_framed_person_its_hands_canvas_and_skeleton(outpaint_set, annotated):
    for row in read_parts(f"{outpaint_set.output}/records", schema=OUTPAINT_SCHEMA).to_pylist():
        image, canvas, skeleton = (decode_image(row[k]) for k in ("image", "canvas", "skeleton"))
        mask = decode_rle(row["mask"])
        assert image.shape == canvas.shape == skeleton.shape == (64, 64, 3) and mask.shape == (64, 64) and mask.any()
        assert (canvas[~mask] == outpaint_set.fill).all()
        points = np.asarray(row["keypoints"]).reshape(133, 3)
        assert (points[points[:, 2] > 0, :2] >= 0).all() and (points[points[:, 2] > 0, :2] < 64).all()
        assert skeleton.any() and row["latents"] is None and row["caption"]


def test_a_rerun_makes_nothing_again(outpaint_set):
    before = part_uris(f"{outpaint_set.output}/records")
    again = outpaint_set.model_copy(deep=True)
    again.tracking.run_name = "outpaint-test-again"
    assert build_outpaint_set.run(again) == 0
    assert part_uris(f"{outpaint_set.output}/records") == before
