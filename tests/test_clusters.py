"""The cluster definitions: valid for Ray's own schemas, consistent with the code."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import ray
import yaml

from handdiff.tracking import is_secret_key
from pipelines.cli import JOBS

CLUSTERS = Path(__file__).resolve().parents[1] / "clusters"
REPO = CLUSTERS.parent


def test_ray_up_config_passes_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CLUSTERS / "ray-up.yaml").read_text())
    validate_config(prepare_config(config))  # Ray's own schema, after Ray fills in its defaults
    assert config["docker"]["image"].startswith(f"rayproject/ray:{ray.__version__}-py311")
    assert "requirements.lock" in config["setup_commands"][0]


def test_runtime_env_is_valid_and_carries_no_secrets():
    from ray.runtime_env import RuntimeEnv

    env = yaml.safe_load((CLUSTERS / "runtime_env.yaml").read_text())
    RuntimeEnv(**env)
    assert not any(k.startswith("AWS_") or is_secret_key(k) for k in env.get("env_vars", {}))


def test_kuberay_cluster_matches_the_ray_version_and_takes_settings_from_secrets():
    cluster = yaml.safe_load((CLUSTERS / "kuberay" / "raycluster.yaml").read_text())
    assert cluster["kind"] == "RayCluster" and cluster["spec"]["rayVersion"] == ray.__version__
    pods = [cluster["spec"]["headGroupSpec"]["template"]] + [g["template"] for g in cluster["spec"]["workerGroupSpecs"]]
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"handdiff-s3", "handdiff-settings"}
        assert "env" not in container  # no inline values: secrets and settings come from the cluster
    gpu = cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize("path", sorted((CLUSTERS / "kuberay").glob("rayjob-*.yaml")), ids=lambda p: p.name)
def test_every_rayjob_runs_a_registered_job_with_a_shipped_config(path):
    job = yaml.safe_load(path.read_text())
    assert job["kind"] == "RayJob"
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == "handdiff"
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:2] == ["python", "-m"] and argv[2].startswith("pipelines.")
    name = argv[2].removeprefix("pipelines.").replace("_", "-")
    assert name in JOBS
    config = argv[argv.index("--config") + 1]
    assert (REPO / config).exists()
    assert path.name == f"rayjob-{Path(config).stem.replace('_', '-')}.yaml"  # one RayJob per shipped config
