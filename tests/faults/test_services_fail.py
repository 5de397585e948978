"""Faults of the services a job depends on, on the real services: the S3 server restarts
mid-job, a Ray Data worker process dies, the MLflow server is down or restarts. After each,
every input id is in exactly one output row (records + errors + filtered), none twice."""

from __future__ import annotations

import os
import signal
import threading
import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from devtools.services import free_port, http_ok, start_mlflow, wait_until
from handdiff import storage
from handdiff.config import to_yaml
from handdiff.tracking import tracked_run
from pipelines import annotate
from tests.faults.conservation import InBackground, assert_each_input_once, hagrid_annotate, input_ids, parts_written

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_annotate_rides_out_an_s3_server_restart(ray_session, s3_server, demo_workdir, s3_prefix, tmp_path):
    """Parts go to S3; the server goes down for 4 s after the first part is written and comes
    back on the same ports and data. The S3 clients' retries (botocore's and pyarrow's "standard"
    mode, 10 attempts, handdiff.storage) carry the writes over the gap; Ray Data's task retries
    are for lost workers, not exceptions, so an outage past a minute or so fails the job, and a
    rerun resumes it (tested in test_annotate)."""
    cfg = hagrid_annotate(demo_workdir, storage.join(s3_prefix, "annotated"), f"sqlite:///{tmp_path}/db.sqlite", "s3-restart")
    job = InBackground(lambda: annotate.run(cfg))
    job.wait_for(lambda: parts_written(cfg) >= 1, "first part on S3")
    at_restart = parts_written(cfg)
    s3_server.restart(down_seconds=4)
    assert job.result() == 0
    assert parts_written(cfg) > at_restart  # the job was writing when the server went away
    assert_each_input_once(cfg)


def test_annotate_recovers_from_a_killed_worker_process(ray_session, demo_workdir, tmp_path):
    """SIGKILL the process of the captioning actor (the last model stage, alive until the end)
    mid-job: Ray restarts the actor and retries its tasks; the parts' names (a hash of their ids)
    keep a retried batch from adding rows."""
    from ray.util.state import list_actors

    cfg = hagrid_annotate(demo_workdir, str(tmp_path / "annotated"), f"sqlite:///{tmp_path}/db.sqlite", "worker-kill")

    def caption_actors() -> list:
        return [a for a in list_actors(filters=[("state", "=", "ALIVE")], limit=1000) if "LlavaCaptions" in a.class_name]

    job = InBackground(lambda: annotate.run(cfg))
    job.wait_for(lambda: parts_written(cfg) >= 1 and caption_actors(), "the first part")
    (actor,) = caption_actors()
    os.kill(actor.pid, signal.SIGKILL)
    at_kill = parts_written(cfg)
    assert job.result() == 0
    assert parts_written(cfg) > at_kill  # the job was writing when the worker died
    assert_each_input_once(cfg)


def test_a_job_whose_mlflow_server_is_down_stops_before_computing(ray_session, demo_workdir, tmp_path, capsys):
    """Our choice: fail fast. Results without their run (params, metrics, lineage) are hard to
    trust, so a job checks the server before Ray starts, in one line, in seconds."""
    cfg = hagrid_annotate(demo_workdir, str(tmp_path / "annotated"), "http://127.0.0.1:1", "no-mlflow")
    config_file = tmp_path / "annotate.yaml"
    config_file.write_text(to_yaml(cfg))
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SystemExit) as exit_info:
        annotate.main(["--config", str(config_file), f"tracking.tracking_uri={dead}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: tracking.tracking_uri: no MLflow server answers at {dead}")
    assert not (tmp_path / "annotated").exists()  # nothing computed


def test_a_brief_mlflow_restart_mid_run_loses_nothing(tmp_path):
    """Once a run is open, a server that restarts is waited for: MLflow's client retries with
    backoff (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``: 7, about 2 minutes in all)."""
    server = start_mlflow(tmp_path)
    try:
        with tracked_run("handdiff-faults", "mlflow-restart", {"a": 1}, tracking_uri=server.uri) as run:
            mlflow.log_metric("before", 1.0)
            server.service.stop()
            restart = threading.Thread(target=lambda: (time.sleep(3), server.service.start_again()))
            restart.start()
            mlflow.log_metric("during", 2.0)  # sent while the server is down: retried until it is back
            restart.join()
        wait_until(lambda: http_ok(f"{server.uri}/health"), 60, "MLflow server")
        logged = MlflowClient(server.uri).get_run(run.info.run_id)
        assert logged.data.metrics == {"before": 1.0, "during": 2.0} and logged.info.status == "FINISHED"
    finally:
        server.service.stop()


def test_the_conservation_check_sees_a_missing_and_a_duplicated_row(annotated):
    """The faults' check itself can fail: drop a row, or write one twice."""
    import pyarrow.parquet as pq

    from handdiff.data.parts import part_uris
    from tests.faults.conservation import output_ids

    cfg = annotate.Config.model_validate({**annotated.model_dump(), "datasets": {"hagrid": annotated.datasets["hagrid"].model_dump()}})
    assert sorted(output_ids(cfg)) == sorted(input_ids(cfg))
    first = part_uris(f"{cfg.output}/hagrid/records")[0]
    table = pq.read_table(first)
    missing = table.slice(1)
    duplicated = pq.read_table(first).slice(0, 1)
    ids = output_ids(cfg)
    ids_missing = [i for i in ids if i != table.column("image_id")[0].as_py()]
    assert sorted(ids_missing) != sorted(input_ids(cfg)) and missing.num_rows == table.num_rows - 1
    ids_twice = ids + duplicated.column("image_id").to_pylist()
    assert len(ids_twice) != len(set(ids_twice))
