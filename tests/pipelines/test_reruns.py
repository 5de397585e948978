"""A rerun under a used run name resumes that same job, or stops before computing anything."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from handdiff.config import to_yaml
from pipelines import build_benchmark_set
from pipelines.demo_configs import demo_config


def runs_named(uri: str, experiment: str, name: str):
    client = MlflowClient(uri)
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id], f"attributes.run_name = '{name}'")


@pytest.mark.services
def test_a_rerun_with_another_config_stops_before_computing_and_resume_false_starts_anew(benchmark_conditions, tmp_path, capsys):
    cfg = benchmark_conditions
    uri, name = cfg.tracking.tracking_uri, cfg.tracking.run_name
    config_file = tmp_path / "config.yaml"
    config_file.write_text(to_yaml(cfg))
    (first,) = runs_named(uri, cfg.experiment, name)
    elsewhere = tmp_path / "elsewhere"

    # another output and seed under the same name: refused in one line naming the keys and the two ways out
    with pytest.raises(SystemExit) as exit_info:
        build_benchmark_set.main(["--config", str(config_file), f"output={elsewhere}", "seed=4", "tasks.concurrency=1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"MLflow run '{name}'" in err and "(output, seed)" in err  # tasks.* may change on a resume: not named
    assert "tracking.run_name=<new name>" in err and "tracking.resume=false" in err
    assert not elsewhere.exists()
    assert [r.info.run_id for r in runs_named(uri, cfg.experiment, name)] == [first.info.run_id]

    # the unchanged job (but for how fast it runs) resumes its run, writing nothing new
    assert build_benchmark_set.main(["--config", str(config_file), "tasks.concurrency=1"]) == 0
    (resumed,) = runs_named(uri, cfg.experiment, name)
    assert resumed.info.run_id == first.info.run_id and resumed.data.metrics["resumed_from"] == resumed.data.metrics["rows_in"]

    # tracking.resume=false opens a new run under the name, with its own params and outputs
    assert build_benchmark_set.main(["--config", str(config_file), f"output={elsewhere}", "seed=4", "tracking.resume=false"]) == 0
    runs = runs_named(uri, cfg.experiment, name)
    assert len(runs) == 2 and (elsewhere / "records").is_dir()
    newest, oldest = runs  # newest first
    assert oldest.info.run_id == first.info.run_id and oldest.data.params["seed"] == "3" and newest.data.params["seed"] == "4"


def test_a_new_training_run_under_a_used_name_keeps_its_own_checkpoints(tmp_path):
    from handdiff.tracking import tracked_run
    from pipelines.job import TrackingConfig
    from pipelines.training import checkpoint_folder

    cfg = demo_config("train-hand", str(tmp_path), TrackingConfig(run_name="stage1", tracking_uri=f"sqlite:///{tmp_path}/db.sqlite"))
    storage_path = cfg.checkpoint.storage_path
    with tracked_run(cfg.experiment, "stage1", tracking_uri=cfg.tracking.tracking_uri) as first:
        assert checkpoint_folder(cfg, first.info.run_id) == f"{storage_path}/stage1"
    (tmp_path / "train_hand" / "stage1").mkdir(parents=True)  # its checkpoints
    with tracked_run(cfg.experiment, "stage1", tracking_uri=cfg.tracking.tracking_uri) as resumed:
        assert checkpoint_folder(cfg, resumed.info.run_id) == f"{storage_path}/stage1"  # a resume finds them
    with tracked_run(cfg.experiment, "stage1", tracking_uri=cfg.tracking.tracking_uri, resume=False) as fresh:
        assert fresh.info.run_id != first.info.run_id
        assert checkpoint_folder(cfg, fresh.info.run_id) == f"{storage_path}/stage1-{fresh.info.run_id[:8]}"  # not restored from
    with tracked_run(cfg.experiment, "stage1", tracking_uri=cfg.tracking.tracking_uri) as later:
        assert later.info.run_id == fresh.info.run_id
        assert checkpoint_folder(cfg, later.info.run_id) == f"{storage_path}/stage1-{fresh.info.run_id[:8]}"
