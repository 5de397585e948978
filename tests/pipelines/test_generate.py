"""generate on the shared Ray cluster: annotated sample people -> images + metadata, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from handdiff import storage
from handdiff.config import ConfigError, to_yaml
from handdiff.data.conditions import load_conditions
from handdiff.data.hand_crops import plan_hand_crops
from handdiff.data.images import decode_image
from handdiff.data.parts import part_uris, read_parts
from handdiff.data.records import ANNOTATION_SCHEMA, ERROR_SCHEMA
from handdiff.inference.generate_stages import GENERATION_SCHEMA
from handdiff.inference.generators import HandDiffGenerator
from pipelines import generate
from pipelines.job import TrackingConfig
from tests.conftest import TRAINED_SETTINGS

pytestmark = [pytest.mark.slow, pytest.mark.services]


def config(annotated, two_stage_models, output: str, uri: str, dataset: str = "hagrid", **changes) -> generate.Config:
    settings = {
        "tracking": TrackingConfig(run_name="generate-test", tracking_uri=uri),
        "conditions": {"path": f"{annotated.output}/{dataset}", "size": 64},
        "output": output,
        "handdiff": {**two_stage_models, "hand_steps": 2, "body_steps": 4},
        "resources": {"actors": 1, "batch_size": 4, "num_cpus": 0.5, "num_gpus": 0},
        "tasks": {"num_cpus": 0.5, "concurrency": 2},
        "index_rows_per_file": 4,
    }
    return generate.Config(**{**settings, **changes})


def test_every_condition_is_one_image_or_one_error_and_a_rerun_makes_none(ray_session, annotated, two_stage_models, tmp_path):
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    cfg = config(annotated, two_stage_models, str(tmp_path / "out"), uri)
    assert generate.run(cfg) == 0
    records = read_parts(f"{cfg.output}/records", schema=GENERATION_SCHEMA)
    errors = read_parts(f"{cfg.output}/errors", schema=ERROR_SCHEMA).to_pylist()
    annotated_rows = read_parts(f"{annotated.output}/hagrid/records", schema=ANNOTATION_SCHEMA).to_pylist()
    assert records.schema == GENERATION_SCHEMA and records.num_rows > 0
    assert sorted(records.column("image_id").to_pylist() + [e["image_id"] for e in errors]) == sorted(r["image_id"] for r in annotated_rows)
    for error in errors:  # only people without a body cannot be drawn
        assert (error["stage"], error["reason"]) == ("condition", "no body keypoints")
    conditions = {c["image_id"]: c for c in load_conditions(**cfg.conditions.model_dump())[0]}
    for row in records.to_pylist():
        assert decode_image(storage.read_bytes(row["image_uri"])).shape == (64, 64, 3)
        assert row["method"] == "handdiff" and (row["strategy"], row["handoff"]) == ("sme", "pixel")
        assert set(json.loads(row["stage_seconds"])) == {"stage1", "compose", "stage2"} and row["seconds"] > 0
        assert json.loads(row["models"])["hand_model"] == two_stage_models["hand_model"]
        details = json.loads(row["details"])
        assert details["hands"] >= 0 and row["canvas_uri"]
        # what the models were trained with decides the crops and the canvas, not a default of generate's
        keypoints = np.asarray(conditions[row["image_id"]]["keypoints"], np.float32).reshape(133, 3)
        plans = plan_hand_crops(keypoints, TRAINED_SETTINGS["crop_margin"], TRAINED_SETTINGS["min_hand_points"])
        assert details["boxes"] == [[p.x0, p.y0, p.side] for p in plans]
        canvas = decode_image(storage.read_bytes(row["canvas_uri"]))
        assert (canvas == TRAINED_SETTINGS["fill"]).all(axis=2).mean() > 0.5
        # stage 1's crops over their mask probabilities, one column per hand, whatever the threshold kept
        if plans:
            strip = decode_image(storage.read_bytes(row["stage1_uri"]))
            crop = TRAINED_SETTINGS["crop_size"]
            assert strip.shape == (2 * crop, len(plans) * crop, 3)
            masks = strip[crop:]
            assert (masks[..., 0] == masks[..., 1]).all() and (masks[..., 0] == masks[..., 2]).all()  # grey probabilities
            assert not np.array_equal(masks, strip[:crop])  # (their rendering: tests/handdiff/inference/test_generators.py)
        else:
            assert row["stage1_uri"] is None
        assert json.loads(row["models"])["fill"] == TRAINED_SETTINGS["fill"]
    images = sorted(p for p in (tmp_path / "out" / "images").rglob("*.png"))
    assert len(images) == records.num_rows
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("handdiff-generate").experiment_id])
    assert run.data.metrics["records"] == records.num_rows and run.data.metrics["seconds_per_image.stage2"] > 0
    m = run.data.metrics  # every data job's timing: the whole run, start-up to the first written part, the steady rate after it
    assert 0 < m["startup_seconds"] < m["seconds"] and m["images_per_second"] > 0 and m["steady_images_per_second"] >= 0
    assert [a.path for a in client.list_artifacts(run.info.run_id, "contact_sheets")] == ["contact_sheets/generated.png"]
    sheet = decode_image(Path(client.download_artifacts(run.info.run_id, "contact_sheets/generated.png", str(tmp_path))).read_bytes())
    assert sheet.shape[1] == 5 * 160  # pose, stage-1 crops, stage-1 masks, canvas, image: one person per row

    stamps = {p: p.stat().st_mtime_ns for p in images}
    parts = part_uris(f"{cfg.output}/records")
    assert generate.run(cfg) == 0  # nothing left to do: no image is written again
    assert part_uris(f"{cfg.output}/records") == parts
    assert {p: p.stat().st_mtime_ns for p in images} == stamps


def test_a_killed_job_resumes_without_writing_an_image_twice(ray_session, annotated, two_stage_models, tmp_path):
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    cfg = config(
        annotated,
        two_stage_models,
        str(tmp_path / "out"),
        uri,
        dataset="laion_human",
        index_rows_per_file=1,
        resources={"actors": 1, "batch_size": 1, "num_cpus": 0.5, "num_gpus": 0},
    )
    config_file = tmp_path / "generate.yaml"
    config_file.write_text(to_yaml(cfg))
    env = {**os.environ, "RAY_ADDRESS": ray_session.address, "RAY_AUTH_MODE": "disabled"}
    job = subprocess.Popen(
        [sys.executable, "-m", "pipelines.generate", "--config", str(config_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not (os.path.isdir(f"{cfg.output}/records") and part_uris(f"{cfg.output}/records")):
        assert job.poll() is None and time.monotonic() < deadline, "no part written in time"
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    first = len(part_uris(f"{cfg.output}/records"))
    assert generate.run(cfg) == 0
    ids = read_parts(f"{cfg.output}/records", ["image_id"]).column("image_id").to_pylist()
    ids += read_parts(f"{cfg.output}/errors", ["image_id"], ERROR_SCHEMA).column("image_id").to_pylist()
    total = len(read_parts(f"{annotated.output}/laion_human/records", ["image_id"]))
    assert first < total and Counter(ids).most_common(1)[0][1] == 1 and len(ids) == total  # every condition exactly once
    assert len(list((tmp_path / "out" / "images").rglob("*.png"))) == len(read_parts(f"{cfg.output}/records", ["image_id"]))
    assert np.isfinite(read_parts(f"{cfg.output}/records", ["seconds"]).column("seconds").to_numpy()).all()


def test_the_registered_two_stage_model_generates_through_mlflow(mlflow_server, annotated, two_stage_models, tmp_path):
    import mlflow
    import pandas as pd

    from handdiff.data.conditions import condition_from_record

    mlflow.set_tracking_uri(mlflow_server.uri)
    mlflow.set_experiment("two-stage-registry-test")
    section = generate.HandDiffSection(**two_stage_models)
    with mlflow.start_run():
        generate.register_two_stage(section, "two-stage-test")
    records = [r for r in read_parts(f"{annotated.output}/laion_human/records", schema=ANNOTATION_SCHEMA).to_pylist()][:2]
    conditions = pd.DataFrame([condition_from_record(r, 64, 0.1, seed) for seed, r in enumerate(records)])
    model = mlflow.pyfunc.load_model("models:/two-stage-test/1")  # as users load it, from the registry over HTTP
    out = model.predict(conditions, params={"size": 64, "hand_steps": 2, "body_steps": 4, "strategy": "naive"})
    assert len(out) == 2 and all(decode_image(png).shape == (64, 64, 3) for png in out["image"])
    params = {"size": 64, "hand_steps": 2, "body_steps": 4, "strategy": "naive"}
    alone = model.predict(conditions.iloc[:1], params=params)
    assert model.predict(conditions.iloc[:1], params=params)["image"][0] == alone["image"][0]  # the same row: the same bytes
    # the seed column decides the image, whatever the batch: equal but for float rounding (CPU kernels sum in
    # batch-dependent order; a stage-1 mask probability at the threshold may flip a pixel of the pasted hand)
    first, batched = decode_image(alone["image"][0]).astype(int), decode_image(out["image"][0]).astype(int)
    assert np.abs(first - batched).mean() < 0.5
    reseeded = model.predict(conditions.iloc[:1].assign(seed=99), params=params)
    assert np.abs(decode_image(reseeded["image"][0]).astype(int) - first).mean() > 2  # another seed, another image


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"crop_size": 128}, "crop_size=128 but the models were trained with crop_size=64"),
        ({"crop_margin": 0.25}, "crop_margin=0.25 but the models were trained with crop_margin=0.35"),
    ],
)
def test_a_setting_that_contradicts_the_trained_models_stops_the_job_before_it_starts(
    annotated, two_stage_models, tmp_path, changes, message
):
    cfg = config(annotated, two_stage_models, str(tmp_path / "out"), "sqlite:///unused.db")
    cfg.handdiff = cfg.handdiff.model_copy(update=changes)
    with pytest.raises(ConfigError, match=message):
        cfg.preflight()
    agreeing = cfg.handdiff.model_copy(update={"crop_size": 64, "crop_margin": 0.35})
    generate.check_trained_settings(agreeing, "handdiff")  # the trained values themselves are fine
    with pytest.raises(ValueError, match=message):  # the library path (the actors, the benchmark) says so too
        HandDiffGenerator(**two_stage_models, **changes)


def test_an_output_of_other_model_contents_is_not_resumed(two_stage_models, tmp_path):
    """A model retrained in place (the same folder, new weights) must not continue an output that
    holds its earlier images: that would mix two models' images in one set. A model is known by its
    contents: the same models copied elsewhere continue it."""
    import shutil

    from safetensors.torch import load_file, save_file

    models = {key: shutil.copytree(path, tmp_path / key) for key, path in two_stage_models.items()}
    cfg = generate.Config(
        conditions={"path": str(tmp_path)}, output=str(tmp_path / "out"), handdiff={**{k: str(v) for k, v in models.items()}}
    )
    first = generate.check_models(cfg, done=set())
    assert set(first) == {str(models["hand_model"]), str(models["body_model"])}
    assert generate.check_models(cfg, done={"an/image"}) == first  # the same contents resume
    moved = {key: shutil.copytree(path, tmp_path / f"moved-{key}") for key, path in models.items()}
    elsewhere = cfg.model_copy(update={"handdiff": cfg.handdiff.model_copy(update={k: str(v) for k, v in moved.items()})})
    assert sorted(generate.check_models(elsewhere, done={"an/image"}).values()) == sorted(first.values())  # and from elsewhere
    (weights,) = (models["body_model"] / "controlnet").glob("*.safetensors")
    save_file({k: v * 1.01 if v.is_floating_point() else v for k, v in load_file(weights).items()}, weights)
    with pytest.raises(ConfigError, match="holds 1 rows made with other contents of .*body_model.*new output"):
        generate.check_models(cfg, done={"an/image"})
    assert generate.check_models(cfg, done=set()) != first  # a fresh output takes the new contents


@pytest.mark.parametrize(
    ("resources", "device", "dtype"),
    [({"num_gpus": 1, "on_device": "cpu"}, "cpu", "float32"), ({"num_gpus": 1}, "cuda", "bfloat16"), ({"num_gpus": 0}, "cpu", "float32")],
)
def test_the_generators_run_where_on_device_says(resources, device, dtype, tmp_path):
    """``on_device`` decides where the model computes (a GPU node's actor may compute on its CPU, as
    annotate's do), and the half-precision dtype only applies on CUDA."""
    cfg = generate.Config(
        conditions={"path": str(tmp_path)},
        output=str(tmp_path / "out"),
        method="sd15",
        baseline={"base": "sd"},
        dtype="bfloat16",
        resources=resources,
    )
    assert (cfg.generator_options()["device"], cfg.generator_options()["dtype"]) == (device, dtype)


def test_the_score_jobs_models_run_where_on_device_says(tmp_path):
    from pipelines import score

    models = {"clip": "c", "sam": "s", "inception": "i"}
    cfg = score.Config(
        generated=str(tmp_path),
        conditions=str(tmp_path),
        output=str(tmp_path / "s"),
        models=models,
        resources={"num_gpus": 1, "on_device": "cpu"},
    )
    assert cfg.scoring().resources.device == "cpu" and cfg.scoring().real == str(tmp_path / "s" / "real")


def test_the_handdiff_section_is_the_two_stage_settings_and_reaches_the_pipeline_whole(tmp_path):
    """One typed object: every inference setting of the library is a key of the section (with the
    library's validation), and the generator rebuilds exactly the settings the config holds."""
    from handdiff.inference.settings import TwoStageSettings

    changed = {
        "hand_steps": 3,
        "hand_guidance": 2.0,
        "body_steps": 4,
        "body_guidance": 3.0,
        "mask_threshold": 0.3,
        "strategy": "bbox",
        "sme_kernel": 5,
        "unmasked_last_steps": 1,
        "handoff": "latent",
    }
    assert set(changed) == set(TwoStageSettings.model_fields)  # a new library setting is configurable and listed here
    cfg = generate.Config(
        conditions={"path": str(tmp_path)}, output=str(tmp_path / "out"), handdiff={"hand_model": "h", "body_model": "b", **changed}
    )
    options = cfg.generator_options()
    assert TwoStageSettings(**{k: options[k] for k in TwoStageSettings.model_fields}) == TwoStageSettings(**changed)
    with pytest.raises(ValueError, match="mask_threshold"):
        generate.Config(
            conditions={"path": str(tmp_path)},
            output=str(tmp_path / "out"),
            handdiff={"hand_model": "h", "body_model": "b", "mask_threshold": 1.5},
        )
