"""What both training jobs share (pipelines.training), without Ray: the batch arithmetic, paths
made absolute for the workers, and where a run keeps its checkpoints."""

from __future__ import annotations

import os

import mlflow
import pytest
from pydantic import ValidationError

from pipelines import train_hand
from pipelines.job import TrackingConfig
from pipelines.training import checkpoint_folder, training_dataset


def config(tmp_path, **changes) -> train_hand.Config:
    fields = {
        "tracking": TrackingConfig(run_name="shared", tracking_uri=f"sqlite:///{tmp_path}/db.sqlite"),
        "data": {"path": "crops"},
        "model": {"base": "zoo/sd15"},
        "train": {"steps": 2, "batch_size": 8},
        "scaling": {"workers": 2},
        "checkpoint": {"storage_path": "runs"},
        **changes,
    }
    return train_hand.Config(**fields)


def test_the_global_batch_splits_over_workers_and_accumulation(tmp_path):
    assert config(tmp_path).worker_batch == 4
    assert config(tmp_path, train={"steps": 2, "batch_size": 8, "grad_accumulation": 2}).worker_batch == 2
    with pytest.raises(ValidationError, match=r"train.batch_size 6 is not a multiple of workers x grad_accumulation = 4"):
        config(tmp_path, train={"steps": 2, "batch_size": 6, "grad_accumulation": 2})


def test_workers_get_absolute_local_paths_and_other_locations_as_they_are(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zoo" / "sd15").mkdir(parents=True)
    resolved = config(tmp_path).resolved()
    assert resolved.data.path == os.path.join(tmp_path, "crops") and resolved.checkpoint.storage_path == os.path.join(tmp_path, "runs")
    assert resolved.model.base == os.path.join(tmp_path, "zoo", "sd15")  # a local folder that exists
    hub = config(tmp_path, model={"base": "stable-diffusion-v1-5/stable-diffusion-v1-5"}, checkpoint={"storage_path": "s3://bucket/runs"})
    assert hub.resolved().model.base == "stable-diffusion-v1-5/stable-diffusion-v1-5"  # a hub id: no such folder here
    assert hub.resolved().checkpoint.storage_path == "s3://bucket/runs"


def test_a_run_keeps_its_checkpoint_folder_and_a_new_run_under_a_used_name_gets_its_own(tmp_path):
    cfg = config(tmp_path, checkpoint={"storage_path": str(tmp_path / "runs")})
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(cfg.tracking.tracking_uri)
    try:
        runs_under_one_name(cfg, tmp_path)
    finally:
        mlflow.set_tracking_uri(before)


def runs_under_one_name(cfg: train_hand.Config, tmp_path) -> None:
    mlflow.set_experiment("checkpoint-folders")  # this store's own, not the experiment an earlier test left active
    with mlflow.start_run(run_name="shared") as first:
        folder = checkpoint_folder(cfg, first.info.run_id)
        assert folder == str(tmp_path / "runs" / "shared")
    (tmp_path / "runs" / "shared").mkdir(parents=True)  # Ray Train wrote there
    with mlflow.start_run(run_id=first.info.run_id):
        assert checkpoint_folder(cfg, first.info.run_id) == folder  # a resumed run: the folder its tag names
    with mlflow.start_run(run_name="shared") as second:
        assert checkpoint_folder(cfg, second.info.run_id) == f"{folder}-{second.info.run_id[:8]}"  # never the other run's checkpoints
    assert mlflow.get_run(second.info.run_id).data.tags["checkpoints"] == f"{folder}-{second.info.run_id[:8]}"


def test_a_training_set_with_no_rows_says_which_job_builds_it(tmp_path):
    cfg = config(tmp_path, data={"path": str(tmp_path / "empty")})
    with pytest.raises(FileNotFoundError, match=r"data.path: no training rows under .*empty/records: run build-hand-crops first"):
        training_dataset(cfg, lambda batch: batch, "build-hand-crops")
