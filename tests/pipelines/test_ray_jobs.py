"""`ray job submit --working-dir` against a `ray start --head` cluster, as users do."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")


def submit(cluster, *entrypoint: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [RAY, "job", "submit", "--address", cluster.dashboard_url, "--working-dir", str(REPO), "--", *entrypoint]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env or {**os.environ, **cluster.env})


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


@pytest.mark.services
@pytest.mark.slow
def test_a_submitted_job_refuses_a_tracking_store_inside_rays_copy_of_the_working_dir(ray_cluster, tmp_path):
    """``--working-dir .`` runs the job in Ray's temporary copy of the checkout: the default
    ./mlruns store there would vanish with it, so the job stops before anything runs."""
    import json

    cmd = [
        RAY,
        "job",
        "submit",
        "--address",
        ray_cluster.dashboard_url,
        "--working-dir",
        str(REPO),
        "--runtime-env-json",
        json.dumps({"env_vars": {"MLFLOW_TRACKING_URI": ""}}),
        "--",
        "python",
        "-m",
        "pipelines.demo",
        f"workdir={tmp_path / 'demo'}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **ray_cluster.env})
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert re.search(
        r"error: tracking: the MLflow store sqlite:///\S+/runtime_resources/working_dir_files/\S+ is inside Ray's temporary copy", text
    ), text[-3000:]
    assert "set MLFLOW_TRACKING_URI" in text and "Traceback" not in text and not (tmp_path / "demo").exists()  # nothing ran


@pytest.mark.services
@pytest.mark.slow
def test_a_token_cluster_runs_only_jobs_submitted_with_its_token(tmp_path, s3_server):
    """The README's commands: a token in ~/.ray/auth_token, RAY_AUTH_MODE=token for the head and
    for every client. Without the token (or with another) the dashboard refuses the job."""
    from devtools.services import start_ray_head

    home, stranger = tmp_path / "home", tmp_path / "stranger"
    home.mkdir(), stranger.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    user = {**clean, "HOME": str(home)}
    subprocess.run([RAY, "get-auth-token", "--generate"], env=user, check=True, capture_output=True, timeout=60)
    token = (home / ".ray" / "auth_token").read_text().strip()
    assert len(token) >= 32
    head = start_ray_head(tmp_path, env={**s3_server.env, "HOME": str(home), "RAY_AUTH_MODE": "token"})
    try:
        for refused_env in (
            {**clean, "HOME": str(stranger)},  # no token, auth mode unset
            {**clean, "HOME": str(stranger), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"},
        ):
            out = submit(head, "python", "tests/pipelines/fixtures/ray_hello.py", env=refused_env)
            assert out.returncode != 0
            text = out.stdout + out.stderr
            assert "squares: " not in text and re.search(r"\b401\b|Unauthorized|Forbidden|AuthenticationError", text), text[-2000:]

        out = submit(head, "python", "tests/pipelines/fixtures/ray_hello.py", env={**user, "RAY_AUTH_MODE": "token"})
        assert out.returncode == 0, out.stdout + out.stderr
        assert "squares: 285" in out.stdout and "succeeded" in out.stdout
    finally:
        head.service.stop()


@pytest.mark.services
@pytest.mark.slow
def test_no_address_starts_a_new_local_instance_even_where_a_cluster_is_advertised(ray_cluster):
    """``ray.address: null`` means a new local instance: not the running head this machine
    advertises in ``ray_current_cluster`` (a bare ``ray.init()`` would join it, and then refuse
    ``num_cpus``), nor a stale address a killed head left there."""
    import tempfile

    script = (
        "import ray; from pipelines.job import RayConfig, init_ray; init_ray(RayConfig(num_cpus=1)); "
        "print('cpus', int(ray.cluster_resources()['CPU']), ray.get_runtime_context().gcs_address)"
    )
    for advertised in (ray_cluster.address, "127.0.0.1:1"):  # the running head; a dead one
        ray_tmp = Path(tempfile.mkdtemp(prefix="hd-ray-", dir="/tmp"))  # short: Ray's socket paths live under it
        (ray_tmp / "ray").mkdir()
        (ray_tmp / "ray" / "ray_current_cluster").write_text(advertised)
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(RAY_TMPDIR=str(ray_tmp), RAY_AUTH_MODE="disabled", PYTHONPATH=str(REPO))
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env, cwd=REPO)
        assert out.returncode == 0, out.stderr[-3000:]
        cpus, gcs = out.stdout.split()[-2:]
        assert cpus == "1" and gcs != advertised
