"""train-hand on the shared Ray cluster: 2 DDP workers (gloo), the tiny zoo."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from handdiff import storage
from handdiff.data.images import decode_image
from handdiff.models.hand_pipeline import HandGenerationPipeline
from pipelines import build_hand_crops, train_hand
from pipelines.job import TrackingConfig
from tests import ray_train
from tests.ray_train import kill_a_worker_then_continue

pytestmark = [pytest.mark.slow, pytest.mark.services]


def config(hand_crops, demo_workdir, tracking_uri: str, run_name: str, storage_path: str, **train) -> train_hand.Config:
    return train_hand.Config(
        tracking=TrackingConfig(run_name=run_name, tracking_uri=tracking_uri),
        data={"path": hand_crops.output, "validation_rows": 2, "shuffle_buffer": 8, "tasks": {"num_cpus": 0.5, "concurrency": 2}},
        model={"base": f"{demo_workdir}/zoo/sd15"},
        train={"batch_size": 4, "warmup_steps": 0, "mixed_precision": "no", "gradient_checkpointing": False, **train},
        scaling={"workers": 2},
        checkpoint={"storage_path": storage_path, "every_steps": 2, "num_to_keep": 2},
        logging={"every_steps": 1, "sample_every_steps": 1000, "sample_inference_steps": 2},
        registered_model=f"hand-{run_name}",
    )


def history(uri: str, run_name: str, metric: str) -> list[tuple[int, float]]:
    return ray_train.history(uri, "handdiff-train-hand", run_name, metric)


def test_two_workers_lower_the_loss_on_a_tiny_set_and_log_everything(ray_session, annotated, demo_workdir, tmp_path):
    tiny = build_hand_crops.Config(
        tracking=TrackingConfig(run_name="tiny-set", tracking_uri=f"sqlite:///{tmp_path}/db.sqlite"),
        sources={"reinterhand": {"path": f"{annotated.output}/reinterhand", "count": 4}},
        output=str(tmp_path / "tiny"),
        size=64,
        margin=0.4,
        min_hand_points=6,
        tasks={"num_cpus": 0.5, "concurrency": 1},
    )
    assert build_hand_crops.run(tiny) == 0
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    cfg = config(tiny, demo_workdir, uri, "overfit", str(tmp_path / "runs"), steps=24, lr=2e-3, heatmap_sigma=1.5)
    cfg.logging.sample_every_steps = 24
    assert train_hand.run(cfg) == 0
    losses = [v for _, v in history(uri, "overfit", "loss")]
    assert len(losses) == 24
    assert np.mean(losses[-6:]) < 0.85 * np.mean(losses[:6]), losses
    for metric in ("loss_ldm", "loss_mask", "lr", "samples_per_second", "grad_norm"):
        assert len(history(uri, "overfit", metric)) == 24
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("handdiff-train-hand").experiment_id])
    assert [a.path for a in client.list_artifacts(run.info.run_id, "samples")] == ["samples/step_00000024.png"]
    (version,) = client.search_model_versions("name = 'hand-overfit'")
    assert version.run_id == run.info.run_id
    final = HandGenerationPipeline.from_pretrained(run.data.tags["final_model"])
    assert final.generator.unet.config.in_channels == 15
    # what the crop set and training chose travels with the model (none of them a default)
    assert final.generator.crop_settings() == {"crop_size": 64, "crop_margin": 0.4, "heatmap_sigma": 1.5, "min_hand_points": 6}
    # the registered model generates hands and masks through MLflow's own loader
    import mlflow.pyfunc
    import pandas as pd

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/hand-overfit/1")
    keypoints = np.zeros((42, 3), np.float32)
    keypoints[:21] = np.column_stack([np.linspace(10, 50, 21), np.linspace(10, 50, 21), np.ones(21)])
    out = model.predict(pd.DataFrame({"caption": ["a hand"], "keypoints": [keypoints.reshape(-1).tolist()]}), params={"steps": 2})
    assert decode_image(out["image"][0]).shape == (64, 64, 3) and out["mask"][0]["size"] == [64, 64]  # the model's crop size
    checkpoints = sorted(p.name for p in (tmp_path / "runs" / "overfit").iterdir() if p.name.startswith("step_"))
    assert checkpoints == ["step_00000022", "step_00000024"]  # num_to_keep = 2


def test_checkpoints_on_s3_survive_a_killed_worker_and_a_restart(ray_session, hand_crops, demo_workdir, s3_prefix, tmp_path):
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    cfg = config(hand_crops, demo_workdir, uri, "s3-run", storage.join(s3_prefix, "runs"), steps=8, lr=1e-4)
    kill_a_worker_then_continue(train_hand.run, cfg, uri, "handdiff-train-hand")
