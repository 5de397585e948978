"""The cluster definitions: valid for Ray's own schemas, consistent with the code."""

from __future__ import annotations

import functools
import os
import shlex
from pathlib import Path

import pytest
import ray
import yaml

from handdiff.tracking import is_secret_key
from pipelines.cli import JOBS

CLUSTERS = Path(__file__).resolve().parents[1] / "clusters"
REPO = CLUSTERS.parent


def kuberay_crds() -> Path:
    """KubeRay v1.7.0's CRDs, shipped beside the checkout in ``shared/reference/kuberay-crds``
    (``HANDDIFF_KUBERAY_CRDS`` points elsewhere)."""
    if env := os.environ.get("HANDDIFF_KUBERAY_CRDS"):
        return Path(env)
    candidates = [parent / "shared" / "reference" / "kuberay-crds" for parent in REPO.parents]
    found = next((c for c in candidates if c.is_dir()), None)
    assert found, f"no shared/reference/kuberay-crds above {REPO}: set HANDDIFF_KUBERAY_CRDS to the folder of KubeRay's CRDs"
    return found


MANIFESTS = sorted((CLUSTERS / "kuberay").glob("*.yaml"))


def strict(schema):
    """``schema`` rejecting unknown fields as ``kubectl apply --validate=strict`` does: every
    object that lists its properties gets ``additionalProperties: false``, unless the schema
    preserves unknown fields there (``x-kubernetes-preserve-unknown-fields``) or maps keys itself."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validators() -> dict[str, object]:
    """kind -> a jsonschema validator of KubeRay v1.7.0's ``ray.io/v1`` OpenAPI schema for it."""
    import jsonschema

    validators = {}
    for path in sorted(kuberay_crds().glob("ray.io_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        validators[crd["spec"]["names"]["kind"]] = jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))
    return validators


def crd_errors(manifest: dict, validators: dict) -> list[str]:
    validator = validators[manifest["kind"]]
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(manifest)]


def test_the_kuberay_crds_are_there_to_validate_against():
    assert {"RayCluster", "RayJob"} <= set(crd_validators())


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_kuberay_manifest_passes_the_crd_schema_strictly(path):
    manifest = yaml.safe_load(path.read_text())
    assert manifest["apiVersion"] == "ray.io/v1"
    assert crd_errors(manifest, crd_validators()) == []


def test_strict_validation_rejects_unknown_and_misplaced_fields():
    validators = crd_validators()
    cluster = yaml.safe_load((CLUSTERS / "kuberay" / "raycluster.yaml").read_text())
    container = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["envFrm"] = container.pop("envFrom")  # a typo kubectl --validate=strict refuses
    cluster["spec"]["headGroupSpec"]["authOptions"] = {"mode": "token"}  # authOptions belongs to spec
    cluster["spec"]["authOptions"] = {"mode": "tokens"}  # not one of the modes
    errors = crd_errors(cluster, validators)
    assert len(errors) == 3, errors
    assert any("envFrm" in e for e in errors) and any("headGroupSpec" in e and "authOptions" in e for e in errors)
    assert any(e.startswith("spec.authOptions.mode") for e in errors)


def test_the_kuberay_cluster_requires_the_token():
    cluster = yaml.safe_load((CLUSTERS / "kuberay" / "raycluster.yaml").read_text())
    assert cluster["spec"]["authOptions"] == {"mode": "token"}
    # the dashboard listens beyond the pod only because the token guards it
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    text = (CLUSTERS / "kuberay" / "raycluster.yaml").read_text()
    assert "RAY_AUTH_MODE=token RAY_AUTH_TOKEN=$(kubectl get secret handdiff" in text  # how a user submits


def test_ray_up_starts_every_node_with_the_token():
    config = yaml.safe_load((CLUSTERS / "ray-up.yaml").read_text())
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [c for c in config[key] if "ray start" in c]
        assert start.startswith("RAY_AUTH_MODE=token ray start"), key
    assert config["file_mounts"]["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"


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


def test_runtime_env_ships_the_code_jobs_run_and_nothing_else(tmp_path):
    """The zip ``ray job submit --runtime-env clusters/runtime_env.yaml`` uploads from a checkout
    (Ray's own packaging, .gitignore honoured as Ray does by default)."""
    import zipfile

    from ray._private.runtime_env.packaging import create_package

    env = yaml.safe_load((CLUSTERS / "runtime_env.yaml").read_text())
    package = tmp_path / "working_dir.zip"
    create_package(str(CLUSTERS.parent), package, include_gitignore=True, excludes=env["excludes"])
    names = zipfile.ZipFile(package).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {"handdiff", "pipelines", "pyproject.toml"} <= tops
    assert "pipelines/configs/train_hand.yaml" in names
    assert not tops & {"tests", "notebooks", "benchmarks", "clusters", ".venv", ".git", "runs", "logs"}
    assert package.stat().st_size < 2 * 2**20


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
