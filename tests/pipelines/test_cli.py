from __future__ import annotations

import subprocess
import sys

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
