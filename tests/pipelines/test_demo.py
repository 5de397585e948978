from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from handdiff.metrics.tables import read_csv_rows
from pipelines import demo


@pytest.mark.slow
@pytest.mark.services
def test_demo_runs_end_to_end_and_logs_to_mlflow(ray_session, tmp_path, capsys, job_logs, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = [f"workdir={tmp_path / 'demo'}", f"tracking.tracking_uri={uri}"]
    assert demo.main(argv) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "bad entries of the sample data accounted for: 29/29" in out
    # a quiet console: handdiff's own story; the libraries' lines (Ray Data's stage statistics
    # among them) are in the log file the demo names first
    # (measured with `handdiff demo` itself: 115 lines of stdout and stderr; here the session's shared
    # driver forwards its workers' output, which a job's own driver does not)
    assert len(out.splitlines()) < 150
    log_file = job_logs / out.split("full log in ", 1)[1].split()[0].rsplit("/", 1)[1]
    assert "Ray Data stages" in log_file.read_text()
    for chatter in ("Ray Data stages", "Running Dataset", "Tasks per node", "Execution plan of Dataset"):
        assert chatter not in out + captured.err
    assert (tmp_path / "demo" / "zoo" / "zoo.json").exists()
    assert (tmp_path / "demo" / "sample-data" / "manifest.json").exists()

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("handdiff-demo")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["workdir"] == str(tmp_path / "demo")
    assert run.data.metrics["hagrid.records"] == 30 and run.data.metrics["hagrid.errors"] == 7
    summary = json.load(open(client.download_artifacts(run.info.run_id, "summary.json", str(tmp_path))))
    assert summary["manifest_problems"] == []

    # then the sample data is annotated, in the annotate job's own experiment
    assert "annotated under" in out
    (annotate_run,) = client.search_runs([client.get_experiment_by_name("handdiff-annotate").experiment_id])
    assert annotate_run.info.run_name == "demo-annotate"
    for name in ("hagrid", "interhand26m", "reinterhand", "laion_human"):
        assert annotate_run.data.metrics[f"{name}.records"] > 0
        assert (tmp_path / "demo" / "annotated" / name / "records").is_dir()

    # then the hand crops are built and stage 1 trains for a few steps, each in its job's experiment
    (crops_run,) = client.search_runs([client.get_experiment_by_name("handdiff-build-hand-crops").experiment_id])
    assert crops_run.data.metrics["records"] > 0 and (tmp_path / "demo" / "hand_crops" / "records").is_dir()
    (train_run,) = client.search_runs([client.get_experiment_by_name("handdiff-train-hand").experiment_id])
    assert [m.step for m in client.get_metric_history(train_run.info.run_id, "loss")] == list(range(1, 9))
    assert client.search_model_versions("name = 'handdiff-hand-generator-demo'")
    assert (tmp_path / "demo" / "train_hand" / "demo-train-hand" / "final_model" / "unet").is_dir()

    # then the outpaint set is built and stage 2 trains for a few steps
    (outpaint_run,) = client.search_runs([client.get_experiment_by_name("handdiff-build-outpaint-set").experiment_id])
    assert outpaint_run.data.metrics["records"] > 0 and (tmp_path / "demo" / "outpaint" / "records").is_dir()
    (body_run,) = client.search_runs([client.get_experiment_by_name("handdiff-train-body").experiment_id])
    assert [m.step for m in client.get_metric_history(body_run.info.run_id, "loss")] == list(range(1, 7))
    assert client.search_model_versions("name = 'handdiff-body-outpainter-demo'")
    assert (tmp_path / "demo" / "train_body" / "demo-train-body" / "final_model" / "controlnet").is_dir()

    # and a handful of people are generated with the two trained stages
    (generate_run,) = client.search_runs([client.get_experiment_by_name("handdiff-generate").experiment_id], "attributes.run_name = 'demo-generate'")
    generated = list((tmp_path / "demo" / "generated" / "images").rglob("*.png"))
    assert generate_run.data.metrics["records"] == len(generated) > 0
    assert "generated under" in out

    # and a small benchmark ends it: Table I for every method, Table II for the ablation
    assert "### Table I" in out and "### Table II (blending ablation)" in out
    for name in ("oracle", "sd15", "controlnet", "t2i-adapter", "humansd", "handrefiner", "handdiff"):
        assert f"| {name} |" in out
    assert (tmp_path / "demo" / "benchmark" / "table1.csv").exists() and (tmp_path / "demo" / "benchmark" / "table2.md").exists()
    table1 = {r["name"]: r for r in read_csv_rows((tmp_path / "demo" / "benchmark" / "table1.csv").read_text())}
    assert table1["oracle"]["dap"] > 0.3  # the conditions are at a size where Holistic finds the sample people
    assert (tmp_path / "demo" / "benchmark" / "figure1.png").exists()

    # a second demo reuses what the first wrote and continues the same MLflow runs
    assert demo.main(argv) == 0
    out = capsys.readouterr().out
    assert "(reused" in out
    assert len(client.search_runs([experiment.experiment_id])) == 1
    (again,) = client.search_runs([client.get_experiment_by_name("handdiff-annotate").experiment_id])
    assert again.info.run_id == annotate_run.info.run_id and again.data.metrics["hagrid.resumed_from"] == 37
    (crops_again,) = client.search_runs([client.get_experiment_by_name("handdiff-build-hand-crops").experiment_id])
    assert crops_again.data.metrics["resumed_from"] == crops_run.data.metrics["rows_in"]
    (train_again,) = client.search_runs([client.get_experiment_by_name("handdiff-train-hand").experiment_id])
    assert [m.step for m in client.get_metric_history(train_again.info.run_id, "loss")] == list(range(1, 9))  # already done
    # a rerun that trained no new step registers no new version; the version says its step and loss
    for name, steps in (("handdiff-hand-generator-demo", 8), ("handdiff-body-outpainter-demo", 6)):
        (version,) = client.search_model_versions(f"name = '{name}'")
        assert re.fullmatch(rf"demo-train-(hand|body) at step {steps}, loss \d+\.\d{{4}} \(run \w+\)", version.description), version.description

    # the same run names for a demo elsewhere is another job: one line before anything runs, no new runs
    elsewhere = tmp_path / "elsewhere"
    with pytest.raises(SystemExit) as exit_info:
        demo.main([f"workdir={elsewhere}", f"tracking.tracking_uri={uri}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "MLflow run 'demo' of experiment 'handdiff-demo'" in err and "(workdir)" in err
    assert "tracking.run_name=" in err and "tracking.resume=false" in err
    assert not elsewhere.exists() and len(client.search_runs([experiment.experiment_id])) == 1

    # the README's continue-a-run example exactly as written, from a checkout whose runs/demo is
    # this demo: stage 2's demo config, then the same command with more steps continues its run
    from pipelines import train_body

    checkout = tmp_path / "checkout"
    (checkout / "runs").mkdir(parents=True)
    (checkout / "runs" / "demo").symlink_to(tmp_path / "demo")
    (checkout / "pipelines").symlink_to(Path(train_body.__file__).parent)
    monkeypatch.chdir(checkout)
    assert train_body.main(["--config", "pipelines/configs/train_body_demo.yaml"]) == 0
    assert train_body.main(["--config", "pipelines/configs/train_body_demo.yaml", "train.steps=10"]) == 0
    from handdiff.tracking import resolve_tracking_uri

    store = MlflowClient(resolve_tracking_uri())  # the store the config names by default, from this checkout
    (continued,) = store.search_runs([store.get_experiment_by_name("handdiff-train-body").experiment_id], "attributes.run_name = 'train-body-demo'")
    assert [m.step for m in store.get_metric_history(continued.info.run_id, "loss")] == list(range(1, 11))  # one run, 6 then 4 more steps
