from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from handdiff import tracking

CONFIG = {
    "job": "demo",
    "train": {"lr": 1e-5, "steps": 3},
    "storage": {"output": "s3://user:hunter2@bucket/out", "aws_secret_access_key": "abc", "api_token": "", "hf-token": "t"},
    "model": {"tokenizer_max_length": 77},
}


def test_redaction_hides_secret_keys_and_url_passwords():
    params = tracking.config_params(CONFIG)
    assert params["train.lr"] == "1e-05"
    assert params["storage.aws_secret_access_key"] == tracking.REDACTED
    assert params["storage.output"] == f"s3://{tracking.REDACTED}@bucket/out"
    assert params["storage.api_token"] == ""  # nothing to hide
    assert params["storage.hf-token"] == tracking.REDACTED
    assert params["model.tokenizer_max_length"] == "77"  # "token" inside a word is no secret
    assert not any("hunter2" in v or v == "abc" for v in params.values())


def test_default_store_is_local_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = tracking.resolve_tracking_uri()
    assert uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example:5000")
    assert tracking.resolve_tracking_uri() == "http://example:5000"
    assert tracking.resolve_tracking_uri("http://other:1") == "http://other:1"


def test_local_store_keeps_params_and_artifacts_beside_the_database(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    with tracking.tracked_run("handdiff-local", "r1", CONFIG, tracking_uri=uri) as run:
        mlflow.log_text("hello", "notes/hello.txt")
    client = MlflowClient(uri)
    assert client.get_run(run.info.run_id).data.params["train.steps"] == "3"
    assert (tmp_path / "store" / "artifacts" / "handdiff-local").is_dir()
    path = client.download_artifacts(run.info.run_id, "notes/hello.txt", str(tmp_path))
    assert Path(path).read_text() == "hello"


def test_every_experiment_opens_on_mlflows_model_training_view(tmp_path):
    """MLflow 3's UI shows an untagged experiment as GenAI ("No data" panels, no model registry)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    with tracking.tracked_run("handdiff-new", "r1", CONFIG, tracking_uri=uri):
        pass
    older = client.create_experiment("handdiff-older")  # made before the tag existed
    with tracking.tracked_run("handdiff-older", "r1", CONFIG, tracking_uri=uri):
        pass
    for name in ("handdiff-new", "handdiff-older"):
        assert client.get_experiment_by_name(name).tags["mlflow.experimentKind"] == "custom_model_development", name
    assert older == client.get_experiment_by_name("handdiff-older").experiment_id


@pytest.mark.services
def test_run_on_the_tracking_server_is_read_back(mlflow_server, tmp_path):
    with tracking.tracked_run("handdiff-test", "server-run", CONFIG, tracking_uri=mlflow_server.uri, tags={"kind": "test"}) as run:
        for step, loss in enumerate([1.0, 0.5, 0.25]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_dict({"rows": 3}, "summary/counts.json")
    client = MlflowClient(mlflow_server.uri)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "server-run"
    assert got.data.tags["kind"] == "test"
    assert got.data.params["storage.aws_secret_access_key"] == tracking.REDACTED
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    local = client.download_artifacts(run.info.run_id, "summary/counts.json", str(tmp_path))
    assert json.loads(Path(local).read_text()) == {"rows": 3}


@pytest.mark.services
def test_a_restarted_job_continues_its_run(mlflow_server):
    uri = mlflow_server.uri
    with (
        pytest.raises(RuntimeError, match="worker died"),
        tracking.tracked_run("handdiff-resume", "job-a", CONFIG, tracking_uri=uri) as first,
    ):
        mlflow.log_metric("step_done", 1, step=1)
        raise RuntimeError("worker died")
    client = MlflowClient(uri)
    assert client.get_run(first.info.run_id).info.status == "FAILED"

    # another job under the same name: refused before the run is touched, naming the keys and the ways out
    other_job = {**CONFIG, "train": {"lr": 1e-4, "steps": 3}, "extra": {"flag": True}}
    with (
        pytest.raises(tracking.RunConflict, match=r"\(extra\.flag, train\.lr\).*tracking\.run_name=.*tracking\.resume=false") as err,
        tracking.tracked_run("handdiff-resume", "job-a", other_job, tracking_uri=uri, resume_safe=("train.steps",)),
    ):
        raise AssertionError("the body must not run")
    assert "\n" not in str(err.value)
    assert tracking.rerun_conflict("handdiff-resume", "job-a", other_job, tracking_uri=uri) == str(err.value)
    assert client.get_run(first.info.run_id).info.status == "FAILED"  # untouched

    # more steps is a resume (when the job says so); the secret's value is not compared (it is redacted)
    more_steps = {**CONFIG, "train": {"lr": 1e-5, "steps": 6}, "storage": {**CONFIG["storage"], "aws_secret_access_key": "rotated"}}
    with (
        pytest.raises(tracking.RunConflict, match=r"\(train\.steps\)"),
        tracking.tracked_run("handdiff-resume", "job-a", more_steps, tracking_uri=uri),
    ):
        pass
    assert tracking.rerun_conflict("handdiff-resume", "job-a", more_steps, tracking_uri=uri, resume_safe=("train.*",)) is None
    with tracking.tracked_run("handdiff-resume", "job-a", more_steps, tracking_uri=uri, resume_safe=("train.steps",)) as second:
        mlflow.log_metric("step_done", 2, step=2)
    assert second.info.run_id == first.info.run_id
    run = client.get_run(first.info.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["train.steps"] == "3"  # params are immutable: the first value stays
    assert [m.step for m in client.get_metric_history(first.info.run_id, "step_done")] == [1, 2]

    experiment = client.get_experiment_by_name("handdiff-resume")
    assert len(client.search_runs([experiment.experiment_id])) == 1
    with tracking.tracked_run("handdiff-resume", "job-a", other_job, tracking_uri=uri, resume=False) as fresh:
        pass
    assert fresh.info.run_id != first.info.run_id
    assert client.get_run(fresh.info.run_id).data.params["train.lr"] == "0.0001"
    with tracking.tracked_run("handdiff-resume", "job-b", CONFIG, tracking_uri=uri) as other:
        pass
    assert other.info.run_id not in (first.info.run_id, fresh.info.run_id)


def test_a_run_continues_whatever_experiment_the_process_set_before(tmp_path):
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    with tracking.tracked_run("handdiff-a", "job", tracking_uri=uri) as first:
        pass
    mlflow.set_experiment("someone-elses")  # e.g. a notebook, or an earlier job in this process
    with tracking.tracked_run("handdiff-a", "job", tracking_uri=uri) as again:
        assert again.info.run_id == first.info.run_id


def test_an_mlflow_server_that_does_not_answer_fails_fast(mlflow_server):
    from devtools.services import free_port

    tracking.check_reachable(mlflow_server.uri)  # a live server passes
    tracking.check_reachable("sqlite:///nowhere/db.sqlite")  # stores without a server: nothing to check
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(tracking.ConfigError, match=rf"^tracking.tracking_uri: no MLflow server answers at {dead} \(.*refused"):
        tracking.check_reachable(dead)
