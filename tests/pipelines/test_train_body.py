"""train-body on the shared Ray cluster: 2 DDP workers (gloo), the tiny zoo, the session's outpaint set."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from diffusers import ControlNetModel
from mlflow.tracking import MlflowClient

from handdiff import storage
from handdiff.data.images import decode_image
from handdiff.data.outpaint import OUTPAINT_SCHEMA
from handdiff.data.parts import read_parts
from handdiff.models.body_pipeline import BodyOutpaintPipeline
from pipelines import train_body
from pipelines.job import TrackingConfig
from tests import ray_train
from tests.ray_train import kill_a_worker_then_continue

pytestmark = [pytest.mark.slow, pytest.mark.services]


def config(outpaint_set, demo_workdir, tracking_uri: str, run_name: str, storage_path: str, **train) -> train_body.Config:
    return train_body.Config(
        tracking=TrackingConfig(run_name=run_name, tracking_uri=tracking_uri),
        data={"path": outpaint_set.output, "validation_rows": 2, "shuffle_buffer": 8, "tasks": {"num_cpus": 0.5, "concurrency": 2}},
        model={"base": f"{demo_workdir}/zoo/sd15", "controlnet": f"{demo_workdir}/zoo/controlnet-openpose"},
        train={"batch_size": 4, "warmup_steps": 0, "mixed_precision": "no", "gradient_checkpointing": False, **train},
        scaling={"workers": 2},
        checkpoint={"storage_path": storage_path, "every_steps": 2, "num_to_keep": 2},
        logging={"every_steps": 1, "sample_every_steps": 1000, "sample_inference_steps": 3},
        registered_model=f"body-{run_name}",
    )


def history(uri: str, run_name: str, metric: str) -> list[tuple[int, float]]:
    return ray_train.history(uri, "handdiff-train-body", run_name, metric)


def test_two_workers_lower_the_loss_log_everything_and_export_a_model_that_samples(ray_session, outpaint_set, demo_workdir, tmp_path):
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    cfg = config(outpaint_set, demo_workdir, uri, "overfit", str(tmp_path / "runs"), steps=24, lr=2e-3)
    cfg.logging.sample_every_steps = 24
    assert train_body.run(cfg) == 0
    losses = [v for _, v in history(uri, "overfit", "loss")]
    assert len(losses) == 24 and np.isfinite(losses).all()
    assert np.mean(losses[-6:]) < 0.85 * np.mean(losses[:6]), losses
    for metric in ("lr", "samples_per_second", "grad_norm"):
        assert len(history(uri, "overfit", metric)) == 24
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("handdiff-train-body").experiment_id])
    assert [a.path for a in client.list_artifacts(run.info.run_id, "samples")] == ["samples/step_00000024.png"]
    (version,) = client.search_model_versions("name = 'body-overfit'")
    assert version.run_id == run.info.run_id
    final = BodyOutpaintPipeline.from_pretrained(run.data.tags["final_model"])
    assert final.controlnet.config.conditioning_channels == 4
    assert (final.settings.config.fill, final.settings.config.size, final.settings.config.person_margin) == (100, 64, 0.1)  # the set's
    assert isinstance(ControlNetModel.from_pretrained(f"{run.data.tags['final_model']}/controlnet"), ControlNetModel)
    assert sorted(p.name for p in (tmp_path / "runs" / "overfit").iterdir() if p.name.startswith("step_")) == [
        "step_00000022",
        "step_00000024",
    ]

    # the registered model outpaints through MLflow's own loader, keeping the hands it was given
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/body-overfit/1")
    row = read_parts(f"{outpaint_set.output}/records", schema=OUTPAINT_SCHEMA).slice(0, 1).to_pylist()[0]
    out = model.predict(
        pd.DataFrame({"caption": [row["caption"]], "keypoints": [row["keypoints"]], "canvas": [row["canvas"]], "mask": [row["mask"]]}),
        params={"steps": 3},
    )
    assert decode_image(out["image"][0]).shape == (64, 64, 3)


def test_a_killed_worker_recovers_and_a_restart_continues_the_run(ray_session, outpaint_set, demo_workdir, s3_prefix, tmp_path):
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    cfg = config(outpaint_set, demo_workdir, uri, "s3-run", storage.join(s3_prefix, "runs"), steps=8, lr=1e-4)
    kill_a_worker_then_continue(train_body.run, cfg, uri, "handdiff-train-body")
