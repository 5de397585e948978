from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import cli


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_registered_job_with_one_line():
    out = run("--help")
    assert out.returncode == 0
    for name, (_, summary) in cli.JOBS.items():
        assert f"  {name}" in out.stdout and summary in out.stdout
    assert "ray job submit" in out.stdout


def test_every_registered_job_module_has_main_and_help():
    for name in cli.JOBS:
        out = run(name, "--help")
        assert out.returncode == 0, out.stderr
        assert f"handdiff {name}" in out.stdout


def test_unknown_job():
    out = run("train-everything")
    assert out.returncode == 2
    assert "unknown job 'train-everything'" in out.stderr


def test_bad_override_fails_with_one_line_naming_key_value_and_file():
    out = run("demo", "tracking.run_nam=x")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "tracking.run_nam = 'x' (override): unknown key" in lines[0]
    assert "pipelines/configs/demo.yaml" in lines[0]


def test_wrong_type_override():
    out = run("demo", "rebuild_zoo=maybe")
    assert out.returncode == 2
    assert "rebuild_zoo = 'maybe' (override)" in out.stderr and "boolean" in out.stderr


def test_print_config_shows_the_resolved_config(tmp_path):
    out = run("demo", "--print-config", f"workdir={tmp_path}", "tracking.run_name=x1")
    assert out.returncode == 0, out.stderr
    assert f"workdir: {tmp_path}" in out.stdout and "run_name: x1" in out.stdout


def test_a_config_for_another_job_is_refused(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("job: annotate\ntracking: {run_name: a}\n")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--config", str(other)])
    assert exit_info.value.code == 2


def test_a_missing_data_path_is_one_line_naming_the_key_before_anything_starts(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "train-hand",
            "--config",
            str(cli_config("train_hand_demo.yaml")),
            f"data.path={tmp_path / 'no-crops'}",
            f"tracking.tracking_uri=sqlite:///{tmp_path}/db.sqlite",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: data.path: no such path: {tmp_path / 'no-crops'}"
    assert not (tmp_path / "db.sqlite").exists()  # stopped before MLflow (and Ray)

    # every missing input of a job, one line each, from a folder where the demo's data is not
    out = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "annotate", "--config", str(cli_config("annotate_demo.yaml"))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert lines[0] == "error: datasets.hagrid.source.images: no such path: runs/demo/sample-data/hagrid/hagrid_dataset"
    assert "datasets.interhand26m.caption_table: no such path: runs/demo/sample-data/interhand26m/captions.csv" in lines
    assert len(lines) == 7  # hagrid images and annotations, three roots, two caption tables


def cli_config(name: str):
    from pipelines.job import CONFIG_DIR

    return CONFIG_DIR / name


def test_input_paths_are_found_in_nested_sections_dicts_and_optionals():
    from handdiff.config import InputPath, StrictModel, input_paths, missing_inputs

    class Inner(StrictModel):
        path: InputPath
        other: str = "not an input"

    class Outer(StrictModel):
        table: InputPath | None = None
        unset: InputPath | None = None
        one: Inner
        many: dict[str, Inner] = {}
        listed: list[Inner] = []

    cfg = Outer(table="/t", one={"path": "/a"}, many={"x": {"path": "/b"}}, listed=[{"path": "/c"}])
    assert list(input_paths(cfg)) == [("table", "/t"), ("one.path", "/a"), ("many.x.path", "/b"), ("listed.0.path", "/c")]
    assert missing_inputs(cfg, lambda uri: uri in ("/t", "/b")) == ["one.path: no such path: /a", "listed.0.path: no such path: /c"]


def test_job_help_loads_neither_torch_nor_ray_and_lists_the_config_keys():
    script = """
import sys
from pipelines import cli
for name in cli.JOBS:
    if name == "assets":
        continue
    try:
        cli.main([name, "--help"])
    except SystemExit as exit_:
        assert exit_.code == 0, name
heavy = sorted(m for m in ("torch", "ray", "diffusers", "transformers", "mlflow", "mediapipe") if m in sys.modules)
print("heavy:", heavy)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout
    assert "config keys (top level): job, ray, tracking, output, datasets, tasks, keypoints, masks, captions" in out.stdout
    assert out.stdout.count("--print-config shows every key") == len(cli.JOBS) - 1


def test_first_try_mistakes_are_one_line_each(tmp_path):
    out = run("train-hand", "--config", "pipelines/configs/annotate_demo.yaml")
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "error: pipelines/configs/annotate_demo.yaml: job = 'annotate': this is a config for 'handdiff annotate', not train-hand"
    )
    out = run("train-hand", "--config", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "nope.yaml: config file not found; shipped configs for train-hand: " in out.stderr
    assert "pipelines/configs/train_hand.yaml" in out.stderr and "pipelines/configs/train_hand_demo.yaml" in out.stderr
    out = run("train-hand", "pipelines/configs/train_hand_demo.yaml")
    assert out.returncode == 2 and out.stderr.strip() == (
        "error: pipelines/configs/train_hand_demo.yaml: a config file is given with "
        "--config: handdiff train-hand --config pipelines/configs/train_hand_demo.yaml"
    )


def test_typos_inside_named_sections_and_bad_enums_name_the_key_once():
    from handdiff.config import ConfigError, load_config
    from pipelines import annotate
    from pipelines.job import CONFIG_DIR

    with pytest.raises(ConfigError) as err:
        load_config(
            annotate.Config,
            str(CONFIG_DIR / "annotate_demo.yaml"),
            ["datasets.hagrid.source.imagse=x", "datasets.hagrid.captionz=1", "masks.arch=vit_x"],
        )
    lines = str(err.value).splitlines()
    assert len(lines) == 3
    assert lines[0].endswith(
        "datasets.hagrid.source.imagse = 'x' (override): unknown key; known keys: annotations, dataset, gestures, images, layout, splits"
    )
    assert lines[1].endswith(
        "datasets.hagrid.captionz = 1 (override): unknown key; known keys: caption_table, captions, filter, keypoints, select, source"
    )
    assert lines[2].endswith("masks.arch = 'vit_x' (override): Input should be 'vit_h', 'vit_l', 'vit_b' or 'tiny'")


def test_a_python_without_the_projects_dependencies_says_so_in_one_line(tmp_path):
    """A job started by another Python (e.g. a Ray head started outside the venv runs every
    submitted job with its own ``python``) names that Python and what to do, without a traceback."""
    import venv

    venv.EnvBuilder(with_pip=False).create(tmp_path / "bare")  # the standard library only
    python = tmp_path / "bare" / "bin" / "python"
    out = subprocess.run([str(python), "-m", "pipelines.demo"], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert (
        line.startswith(f"error: {python} lacks the project's dependencies (no mlflow, ray, diffusers")
        and ".venv/bin/ray start --head" in line
    )


def test_a_local_store_or_log_folder_inside_rays_working_dir_copy_is_not_used(tmp_path, monkeypatch):
    """Under ``ray job submit --working-dir .`` the job runs in Ray's temporary copy of the
    directory: the default ./mlruns there would vanish with it (refused before anything runs),
    and the default log folder moves out of it."""
    from pipelines.job import ConfigError, check_store_outlives_job, default_log_dir

    copy = tmp_path / "session_1" / "runtime_resources" / "working_dir_files" / "_ray_pkg_0123"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    monkeypatch.delenv("HANDDIFF_LOG_DIR", raising=False)
    with pytest.raises(ConfigError, match="inside Ray's temporary copy of the working directory.*set MLFLOW_TRACKING_URI"):
        check_store_outlives_job(f"sqlite:///{copy}/mlruns/mlflow.db")
    check_store_outlives_job(f"sqlite:///{tmp_path}/mlflow.db")  # outside it
    check_store_outlives_job("http://127.0.0.1:5000")
    assert "working_dir_files" not in str(default_log_dir().resolve()) and default_log_dir().name == "handdiff-logs"
    monkeypatch.chdir(tmp_path)
    assert default_log_dir() == Path("logs")
