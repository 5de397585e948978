from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from devtools.services import start_ray_head
from handdiff.data.parts import read_parts
from handdiff.metrics.summary import read_resamples
from handdiff.metrics.tables import read_csv_rows
from pipelines import demo
from tests.documented import documented_demo_commands

REPO = Path(__file__).resolve().parents[2]
CHATTER = (
    "Ray Data stages",
    "Running Dataset",
    "Tasks per node",
    "Execution plan of Dataset",
    "Loading pipeline components",
    "Successfully registered model",
    "Created version",
    "(raylet)",
)
"""Libraries' lines that belong in the job's log file, not its console."""


def readme_local_head() -> list[str]:
    """docs/clusters.md's "A local head to try it" commands, one per entry (continuations joined, comments dropped)."""
    text = (REPO / "docs" / "clusters.md").read_text()
    block = text.split("A local head to try it", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [re.sub(r"\s+#.*$", "", line) for line in re.sub(r"\\\n\s*", " ", block).splitlines()]
    return [" ".join(line.split()) for line in lines if line.strip()]


def run_the_readme_demo_on_a_local_head(tmp_path: Path, monkeypatch) -> str:
    """The README's local-head commands as written, from a fresh shell: activate the venv, make a
    token, start a head (this helper's, on free ports: ``ray start --head`` from the venv with 2
    CPUs, this machine's count), submit the demo with ``--working-dir .``. Returns the
    submitter's console; only the head's address and the demo's workdir are the test's own."""
    commands = readme_local_head()
    start = commands.index("ray start --head")
    submit = commands[-1]
    assert commands[0] == ". .venv/bin/activate" and submit.startswith(
        "ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m pipelines.demo "
    )
    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"):  # a fresh shell has none
        monkeypatch.delenv(name, raising=False)
    home, head_dir = tmp_path / "home", tmp_path / "head"
    home.mkdir(), head_dir.mkdir()
    shell = {**{k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "VIRTUAL_ENV"))}, "HOME": str(home)}

    def bash(lines: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-ec", "\n".join(lines)], cwd=REPO, env=shell, capture_output=True, text=True, timeout=1200)

    made = bash(commands[:start])  # activate, the token, RAY_AUTH_MODE
    assert made.returncode == 0 and (home / ".ray" / "auth_token").exists(), made.stderr
    head = start_ray_head(head_dir, env={"HOME": str(home), "RAY_AUTH_MODE": "token"}, num_cpus=2)
    try:
        submit = submit.replace("http://127.0.0.1:8265", head.dashboard_url).replace("/tmp/handdiff-demo", str(tmp_path / "demo"))
        out = bash(commands[:start] + commands[start + 1 : -1] + [submit])
    finally:
        head.service.stop()
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "succeeded" in text, text[-5000:]
    return text


@pytest.mark.slow
@pytest.mark.services
def test_demo_runs_end_to_end_and_logs_to_mlflow(ray_session, tmp_path, capsys, job_logs, monkeypatch):
    """The demo as the README's local head runs it (``ray job submit``), then again in this
    process: what it writes, what it logs to MLflow, what a rerun reuses."""
    text = run_the_readme_demo_on_a_local_head(tmp_path, monkeypatch)
    uri = f"sqlite:///{tmp_path / 'demo' / 'mlflow.db'}"  # the README's tracking_uri, in the test's workdir
    argv = [f"workdir={tmp_path / 'demo'}", f"tracking.tracking_uri={uri}"]
    out = text.split("Tailing logs until the job exits", 1)[1].split("WebSocket closed", 1)[0]
    assert "bad entries of the sample data accounted for: 29/29" in out
    assert "annotate: pools scaled to this instance's 2 CPUs" in out  # sized to the head it was given
    # a quiet console under `ray job submit`: handdiff's own story; the libraries' lines (Ray Data's
    # stage statistics, diffusers' loading bars, MLflow's registrations) are in the log file the demo
    # names first (measured: 130 lines between Ray's own 29 submission lines; Ray's C++ core worker
    # still prints one "constructor arguments in the object store" line itself, ray-project/ray#57733)
    assert len(out.splitlines()) < 150, out
    log_file = Path(out.split("full log in ", 1)[1].split()[0])
    assert "Ray Data stages" in log_file.read_text() and "Successfully registered model" in log_file.read_text()
    for chatter in CHATTER:
        assert chatter not in text, chatter
    assert (tmp_path / "demo" / "zoo" / "zoo.json").exists()
    assert (tmp_path / "demo" / "sample-data" / "manifest.json").exists()

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("handdiff-demo")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["workdir"] == str(tmp_path / "demo")
    assert run.data.metrics["hagrid.records"] == 30 and run.data.metrics["hagrid.errors"] == 7
    summary = json.loads(Path(client.download_artifacts(run.info.run_id, "summary.json", str(tmp_path))).read_text())
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
    (generate_run,) = client.search_runs(
        [client.get_experiment_by_name("handdiff-generate").experiment_id], "attributes.run_name = 'demo-generate'"
    )
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
    # intervals for what each table shows: Table II's whole-image FID is resampled, Table I's is not
    for scores in (tmp_path / "demo" / "benchmark" / "scores").glob("*-*"):
        resampled = set(read_resamples(str(scores / "resamples.parquet")))
        assert "fid_fg" in resampled and ("fid" in resampled) == scores.name.startswith(("bbox-", "naive-", "sme-")), scores.name
    # HandRefiner refined SD 1.5's images rather than drawing them again
    (refined,) = (tmp_path / "demo" / "benchmark" / "generated").glob("handrefiner-*")
    details = [json.loads(d) for d in read_parts(str(refined / "records"), ["details"]).column("details").to_pylist()]
    assert details and {d["sd_image"] for d in details} == {"reused"}

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
        assert re.fullmatch(rf"demo-train-(hand|body) at step {steps}, loss \d+\.\d{{4}} \(run \w+\)", version.description), (
            version.description
        )

    # the same run names for a demo elsewhere is another job: one line before anything runs, no new runs
    elsewhere = tmp_path / "elsewhere"
    with pytest.raises(SystemExit) as exit_info:
        demo.main([f"workdir={elsewhere}", f"tracking.tracking_uri={uri}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "MLflow run 'demo' of experiment 'handdiff-demo'" in err and "(workdir)" in err
    assert "tracking.run_name=" in err and "tracking.resume=false" in err
    assert not elsewhere.exists() and len(client.search_runs([experiment.experiment_id])) == 1

    # the README's and docs' commands marked to run after the demo, as written and in reading order,
    # from a checkout whose runs/demo is this demo and whose MLflow store is the configs' default:
    # the README's continue-a-run example first (stage 2's demo config, then more steps)
    from handdiff.tracking import resolve_tracking_uri
    from pipelines import cli

    checkout = tmp_path / "checkout"
    (checkout / "runs").mkdir(parents=True)
    (checkout / "runs" / "demo").symlink_to(tmp_path / "demo")
    (checkout / "pipelines").symlink_to(REPO / "pipelines")
    monkeypatch.chdir(checkout)
    commands = documented_demo_commands()
    assert commands[:2] == [
        ("README.md", "handdiff train-body --config pipelines/configs/train_body_demo.yaml"),
        ("README.md", "handdiff train-body --config pipelines/configs/train_body_demo.yaml train.steps=10"),
    ]
    for page, command in commands:
        argv = shlex.split(command)
        assert argv[0] == "handdiff" and cli.main(argv[1:]) == 0, f"{page}: {command}"
        capsys.readouterr()
    store = MlflowClient(resolve_tracking_uri())  # the store the configs name by default, from this checkout
    (continued,) = store.search_runs(
        [store.get_experiment_by_name("handdiff-train-body").experiment_id], "attributes.run_name = 'train-body-demo'"
    )
    assert [m.step for m in store.get_metric_history(continued.info.run_id, "loss")] == list(range(1, 11))  # one run, 6 then 4 more steps
