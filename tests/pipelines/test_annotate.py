"""The annotate job on the shared Ray cluster: end to end, through S3, and killed
half way then rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient
from segment_anything import SamPredictor

from handdiff import storage
from handdiff.annotation.masks import expand_box
from handdiff.assets.sample_data import build_sample_data, read_manifest, write_hagrid
from handdiff.assets.tiny_zoo import SAM_ARCH, model_locations
from handdiff.config import ConfigError
from handdiff.data import keypoints as kp
from handdiff.data.images import load_image
from handdiff.data.parts import part_uris, read_parts, written_ids
from handdiff.data.readers import open_reader
from handdiff.data.records import ANNOTATION_SCHEMA, ERROR_SCHEMA, keypoints_from_column
from handdiff.data.rle import decode_rle
from handdiff.data.selection import SourceSelection, select_entries
from handdiff.models.loading import load_sam
from pipelines import annotate
from pipelines.demo_configs import demo_config
from pipelines.job import TrackingConfig

pytestmark = [pytest.mark.slow, pytest.mark.services]
TABLES = ("records", "errors", "filtered")


def outputs(out: str) -> dict[str, list[dict]]:
    return {t: read_parts(f"{out}/{t}", schema=ANNOTATION_SCHEMA if t == "records" else ERROR_SCHEMA).to_pylist() for t in TABLES}


def entry_ids(cfg: annotate.Config, name: str) -> list[str]:
    return [e["image_id"] for e in open_reader(**cfg.datasets[name].source.model_dump()).entries()]


def test_rows_in_equal_records_plus_errors_plus_filtered(annotated):
    for name in annotated.datasets:
        got = outputs(f"{annotated.output}/{name}")
        ids = [r["image_id"] for t in TABLES for r in got[t]]
        assert Counter(ids) == Counter(entry_ids(annotated, name)), name  # every input exactly once
        assert got["records"], name


def test_every_bad_entry_of_the_sample_data_is_accounted_for(annotated, sample_data):
    errors = {r["image_id"]: r for name in annotated.datasets for r in outputs(f"{annotated.output}/{name}")["errors"]}
    records = {r["image_id"] for name in annotated.datasets for r in outputs(f"{annotated.output}/{name}")["records"]}
    for entry in read_manifest(sample_data)["bad_entries"]:
        if entry["dataset"] not in annotated.datasets:
            continue
        if entry["stage"] is None:  # converted at decode; later stages may still reject the picture
            assert entry["image_id"] in records or errors[entry["image_id"]]["stage"] not in ("read", "decode")
        else:
            got = errors[entry["image_id"]]
            assert got["stage"] == entry["stage"] and entry["reason"] in got["reason"], (entry, got)


def test_records_schema_keypoints_and_provenance(annotated):
    for name in annotated.datasets:
        table = read_parts(f"{annotated.output}/{name}/records")
        assert table.schema == ANNOTATION_SCHEMA
        for r in table.to_pylist():
            keypoints = keypoints_from_column(r["keypoints"])
            assert ((keypoints[:, 2] >= 0) & (keypoints[:, 2] <= 1)).all()
            for side in r["hand_sides"]:
                hand = keypoints[kp.hand_slice(side)]
                scored = hand[hand[:, 2] > 0, :2]
                # hands lie in the image (Mediapipe may reach a little past the border)
                assert (
                    (scored > -0.1 * r["width"]).all()
                    and (scored[:, 0] < 1.1 * r["width"]).all()
                    and (scored[:, 1] < 1.1 * r["height"]).all()
                )
            assert len(r["hand_masks"]) == len(r["hand_boxes"]) == len(r["hand_sides"]) > 0
            assert r["caption"] and r["code_version"]
            annotators = json.loads(r["annotators"])
            assert annotators["reader"] == r["dataset"] and "masks" in annotators


def test_dataset_specific_choices(annotated, sample_data):
    interhand = outputs(f"{annotated.output}/interhand26m")["records"]
    truth = {r["image_id"]: r for r in open_reader(**annotated.datasets["interhand26m"].source.model_dump()) if "reason" not in r}
    for r in interhand:
        assert r["keypoints_source"] == "dataset" and r["caption_source"] == "table" and r["person_count"] is None
        assert r["person_mask"] is None  # hand-only datasets: no person prompt
        assert np.allclose(r["keypoints"], np.asarray(truth[r["image_id"]]["keypoints"]).reshape(-1))
        assert r["caption"] in (
            "a close-up of a relaxed right hand of a young man with light skin",
            "two hands of a woman with medium skin tone pressing fists together",
        )
    reinterhand = outputs(f"{annotated.output}/reinterhand")["records"]
    assert Counter(r["hand_mask_source"] for r in reinterhand) == {"release": 12, "sam": 6}  # 2 of 3 cameras ship masks
    for r in reinterhand:
        if r["hand_mask_source"] == "release":
            release = load_image(r["image_uri"].replace("/images/", "/masks/"))[..., 0] > 127
            union = np.zeros_like(release)
            for rle in r["hand_masks"]:
                union |= decode_rle(rle)
            assert not (union & ~release).any()  # the release's pixels, cut to each hand's box
    laion = outputs(f"{annotated.output}/laion_human")
    assert sorted(f["reason"] for f in laion["filtered"]) == ["2 people in the dataset's poses, not 1"] * 2  # before any model
    hagrid = outputs(f"{annotated.output}/hagrid")["records"]
    assert {r["keypoints_source"] for r in hagrid} <= {"mediapipe", "mediapipe+dataset_hands"}
    for r in hagrid:
        has_body = keypoints_from_column(r["keypoints"])[kp.BODY, 2].max() > 0
        assert r["caption_source"] == "llava" and (r["person_mask"] is not None) == has_body and (r["person_box"] is not None) == has_body


def test_hand_masks_are_sam_masks_of_each_hand_dilated_5x5(annotated, tiny_zoo):
    """Recomputed independently: segment-anything's own predictor, OpenCV's dilation."""
    predictor = SamPredictor(load_sam(model_locations(tiny_zoo)["sam"], SAM_ARCH))
    records = [r for r in outputs(f"{annotated.output}/hagrid")["records"]][:3]
    for r in records:
        image = load_image(r["image_uri"])
        predictor.set_image(image)
        keypoints = keypoints_from_column(r["keypoints"])
        for side, box, rle in zip(r["hand_sides"], r["hand_boxes"], r["hand_masks"], strict=True):
            hand = keypoints[kp.hand_slice(side)]
            scored = hand[hand[:, 2] > 0, :2]
            mask, _, _ = predictor.predict(
                point_coords=scored,
                point_labels=np.ones(len(scored)),
                box=expand_box(box, 0.1, r["width"], r["height"]),
                multimask_output=False,
            )
            expected = cv2.dilate(mask[0].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            assert np.array_equal(decode_rle(rle), expected)


def test_mlflow_holds_counts_annotators_and_contact_sheets(annotated):
    client = MlflowClient(annotated.tracking.tracking_uri)
    experiment = client.get_experiment_by_name("handdiff-annotate")
    (run,) = client.search_runs([experiment.experiment_id])
    for name in annotated.datasets:
        total = len(entry_ids(annotated, name))
        m = run.data.metrics
        assert m[f"{name}.rows_in"] == total == m[f"{name}.records"] + m[f"{name}.errors"] + m[f"{name}.filtered"]
    assert m["images_per_second"] > 0
    assert 0 < m["startup_seconds"] < m["seconds"] and m["steady_images_per_second"] > 0  # the first written batch, then the rest
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "contact_sheets")}
    assert artifacts == {f"contact_sheets/{name}.png" for name in annotated.datasets}
    annotators = json.loads(Path(client.download_artifacts(run.info.run_id, "annotators/hagrid.json")).read_text())
    assert annotators["keypoints"].startswith("mediapipe-holistic") and "llava" in annotators["captions"]


def test_a_second_run_writes_nothing_new(annotated):
    before = {name: sorted(part_uris(f"{annotated.output}/{name}/records")) for name in annotated.datasets}
    again = annotated.model_copy(deep=True)
    again.tracking.run_name = "annotate-test-again"
    assert annotate.run(again) == 0
    after = {name: sorted(part_uris(f"{annotated.output}/{name}/records")) for name in annotated.datasets}
    assert before == after


def test_annotation_through_s3(ray_session, demo_workdir, s3_prefix, tmp_path):
    data = storage.join(s3_prefix, "sample-data")
    build_sample_data(data)
    cfg = demo_config("annotate", demo_workdir, TrackingConfig(run_name="s3", tracking_uri=f"sqlite:///{tmp_path}/db.sqlite"))
    cfg.output = storage.join(s3_prefix, "annotated")
    cfg.datasets = {
        "hagrid": {"source": {"dataset": "hagrid", "images": f"{data}/hagrid/hagrid_dataset", "annotations": f"{data}/hagrid/annotations"}},
        "reinterhand": {
            "source": {"dataset": "reinterhand", "root": f"{data}/reinterhand"},
            "caption_table": f"{data}/reinterhand/captions.json",
        },
    }
    started = time.time()
    assert annotate.run(cfg) == 0
    # the two datasets went through one pipeline: one actor per model stage (the demo's pools), not one per dataset
    import ray

    inits = Counter(e["cat"] for e in ray.timeline() if e.get("name") == "__init__" and e["ts"] / 1e6 >= started)
    for stage in ("WholeBodyKeypoints", "HandMasks", "LlavaCaptions"):
        assert inits[f"task::MapWorker(MapBatches({stage})).__init__"] == 1, inits
    for name in cfg.datasets:
        got = outputs(f"{cfg.output}/{name}")
        assert Counter(r["image_id"] for t in TABLES for r in got[t]) == Counter(entry_ids(cfg, name))
        assert all(r["image_uri"].startswith("s3://") for r in got["records"])
    assert {r["hand_mask_source"] for r in outputs(f"{cfg.output}/reinterhand")["records"]} == {"release", "sam"}


def test_killed_half_way_then_rerun_gives_exactly_one_row_per_input(ray_cluster, ray_session, demo_workdir, tmp_path):
    cfg = demo_config("annotate", demo_workdir, TrackingConfig(run_name="killed", tracking_uri=f"sqlite:///{tmp_path}/db.sqlite"))
    cfg.output = str(tmp_path / "out")
    # a HaGRID sample 4x the usual size, so that there are seconds between the first part and the last
    write_hagrid(str(tmp_path / "hagrid"), per_gesture={"train": 25})
    cfg.datasets = {
        "hagrid": {
            "source": {
                "dataset": "hagrid",
                "images": str(tmp_path / "hagrid" / "hagrid_dataset"),
                "annotations": str(tmp_path / "hagrid" / "annotations"),
            }
        }
    }
    cfg.index_rows_per_file = 2  # many small blocks and parts, so that the kill lands between them
    for stage in (cfg.keypoints, cfg.masks, cfg.captions):
        stage.resources.batch_size = 2
    config = tmp_path / "annotate.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    out = f"{cfg.output}/hagrid"
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.address, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.annotate", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not any(part_uris(f"{out}/{t}") for t in TABLES):
        assert proc.poll() is None, "the job ended before writing anything"
        assert time.monotonic() < deadline, "no part written in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    total = len(entry_ids(cfg, "hagrid"))
    done = set().union(*(written_ids(f"{out}/{t}") for t in TABLES))
    print(f"killed with {len(done)} of {total} written")
    assert 0 < len(done) < total, f"the kill should land half way: {len(done)} of {total} written"

    assert annotate.run(cfg) == 0
    ids = [r["image_id"] for t in TABLES for r in outputs(out)[t]]
    assert Counter(ids) == Counter(entry_ids(cfg, "hagrid"))  # nothing missing, nothing twice
    client = MlflowClient(cfg.tracking.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("handdiff-annotate").experiment_id])
    assert run.data.metrics["hagrid.resumed_from"] == len(done)  # the restart continued the killed run's MLflow run


def test_a_selection_annotates_only_what_the_sets_draw_and_draws_again_when_short(ray_session, demo_workdir, tmp_path):
    """HaGRID's two draws (the crop set's train images, the benchmark's test images) and
    LAION-Human's people, drawn from the raw entries before any model runs: only those (and every
    entry-level error) are annotated; a draw left short by errors and filtered rows draws again;
    the set jobs' own draw then finds its full count; a rerun resumes, another selection is refused."""
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    cfg = demo_config("annotate", demo_workdir, TrackingConfig(run_name="select", tracking_uri=uri))
    cfg.output = str(tmp_path / "annotated")
    hagrid, laion = cfg.datasets["hagrid"], cfg.datasets["laion_human"]
    hagrid.select = annotate.SelectionSection(
        draws=[{"count": 6, "splits": ["train"], "stratify_by": "gesture"}, {"count": 3, "splits": ["test"]}], oversample=1.0
    )
    laion.select = annotate.SelectionSection(draws=[{"count": 9, "splits": None}], oversample=1.0, max_rounds=3)
    cfg.datasets = {"hagrid": hagrid, "laion_human": laion}
    assert annotate.run(cfg) == 0
    for name in cfg.datasets:
        stored = json.loads(Path(cfg.output, name, "selection.json").read_text())
        entries = list(open_reader(**cfg.datasets[name].source.model_dump()).entries())
        errors = [e["image_id"] for e in entries if "reason" in e]
        got = outputs(f"{cfg.output}/{name}")
        assert Counter(r["image_id"] for t in TABLES for r in got[t]) == Counter(errors + stored["selected"]), name
        if name == "hagrid":
            assert 9 <= len(stored["selected"]) < len(entries) - len(errors)  # a selection, not everything
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(cfg.experiment).experiment_id])
    m = run.data.metrics
    # LAION-Human's first 9 hold people its own poses count twice and nobody at all: short, so a second round
    assert m["laion_human.rounds"] >= 2 and m["laion_human.selected"] > 9
    assert m["laion_human.draw0.usable"] >= 9 or m["laion_human.draw0.short_by"] == 9 - m["laion_human.draw0.usable"]
    laion_filtered = outputs(f"{cfg.output}/laion_human")["filtered"]
    assert any(f["reason"] == "2 people in the dataset's poses, not 1" for f in laion_filtered)
    # the set jobs' draw from what was annotated finds its full count
    assert m["hagrid.draw0.usable"] >= 6
    entries, report, _ = select_entries({"hagrid": SourceSelection(f"{cfg.output}/hagrid", count=6, stratify_by="gesture")}, seed=0)
    assert len(entries) == 6 and "short_by" not in report["hagrid"]

    before = {name: sorted(part_uris(f"{cfg.output}/{name}/records")) for name in cfg.datasets}
    again = cfg.model_copy(deep=True)
    again.preflight()
    assert annotate.run(again) == 0
    assert {name: sorted(part_uris(f"{cfg.output}/{name}/records")) for name in cfg.datasets} == before
    again.datasets["hagrid"].select.oversample = 1.5
    with pytest.raises(ConfigError, match=r"datasets\.hagrid\.select: .*selection\.json was drawn with other settings"):
        again.preflight()
