"""`ray job submit --working-dir` against a `ray start --head` cluster, as users do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")


def submit(cluster, *entrypoint: str) -> subprocess.CompletedProcess:
    cmd = [RAY, "job", "submit", "--address", cluster.dashboard_url, "--working-dir", str(REPO), "--", *entrypoint]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **cluster.env})


@pytest.mark.services
@pytest.mark.slow
def test_submitted_entrypoint_runs_tasks_on_the_cluster(ray_cluster):
    out = submit(ray_cluster, "python", "tests/pipelines/fixtures/ray_hello.py")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "squares: 285" in out.stdout
    assert "cluster cpus: 8" in out.stdout
    assert "succeeded" in out.stdout


@pytest.mark.services
@pytest.mark.slow
def test_failing_job_shows_its_error_to_the_submitter(ray_cluster):
    out = submit(ray_cluster, "python", "-m", "pipelines.demo", "tracking.run_nam=x")
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "tracking.run_nam = 'x' (override): unknown key" in text
    assert "failed" in text.lower()
