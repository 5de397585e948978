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


def kill_a_worker_then_continue(run, cfg, uri: str, experiment: str) -> None:
    """Run ``run(cfg)`` (checkpoints every 2 steps to S3, 8 steps), SIGKILL a Ray Train worker
    once a checkpoint is committed, and check that the run recovers from that checkpoint and
    finishes; then start the same run name with 10 steps and check that it continues at step
    8 in the same MLflow run."""
    import os
    import signal
    import threading
    import time

    from handdiff import storage

    fs, root = storage.filesystem(storage.join(cfg.checkpoint.storage_path, cfg.tracking.run_name))
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("rc", run(cfg)))
    thread.start()
    deadline = time.monotonic() + 300
    while (committed := committed_step(fs, root)) < 2:  # kill a worker once a checkpoint on S3 is committed
        assert thread.is_alive() and time.monotonic() < deadline, "no committed checkpoint on S3 in time"
        time.sleep(0.2)
    pids = ray_train_worker_pids()
    assert len(pids) == 2
    os.kill(pids[-1], signal.SIGKILL)
    thread.join(600)
    assert outcome.get("rc") == 0
    name = cfg.tracking.run_name
    steps = [s for s, _ in history(uri, experiment, name, "loss")]
    assert steps[-1] == 8 and set(steps) == set(range(1, 9))
    resumed = history(uri, experiment, name, "resumed_from_step")
    assert resumed and resumed[0][1] >= committed  # the worker group restarted from the committed checkpoint, not from scratch
    assert checkpoint_names(fs, root)[-1] == "step_00000008"

    cfg.train.steps = 10  # the same run name with more steps continues from its latest checkpoint
    assert run(cfg) == 0
    assert history(uri, experiment, name, "resumed_from_step")[-1] == (8, 8.0)
    assert [s for s, _ in history(uri, experiment, name, "loss")][-2:] == [9, 10]
    client = MlflowClient(uri)
    assert len(client.search_runs([client.get_experiment_by_name(experiment).experiment_id])) == 1
    assert checkpoint_names(fs, root)[-1] == "step_00000010"
