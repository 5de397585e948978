"""Helpers for the Ray Train job tests: metric histories, worker processes, committed checkpoints."""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient


def history(uri: str, experiment: str, run_name: str, metric: str) -> list[tuple[int, float]]:
    """(step, value) of ``metric`` in the one run named ``run_name``."""
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], f"attributes.run_name = '{run_name}'")
    return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, metric))


def ray_train_worker_pids() -> list[int]:
    from ray.util.state import list_actors

    return [a.pid for a in list_actors(filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")])]


def committed_step(fs, run_root: str) -> int:
    """The latest checkpoint Ray Train's controller has committed (its snapshot in storage):
    a worker killed before that may restart from an older one."""
    snapshot = f"{run_root}/checkpoint_manager_snapshot.json"
    fs.invalidate_cache()
    if not fs.exists(snapshot):
        return 0
    return max((r["metrics"]["step"] for r in json.loads(fs.cat_file(snapshot))["checkpoint_results"]), default=0)


def checkpoint_names(fs, run_root: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(p.rsplit("/", 1)[1] for p in fs.ls(run_root) if p.rsplit("/", 1)[1].startswith("step_")) if fs.exists(run_root) else []
