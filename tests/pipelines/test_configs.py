"""Every shipped config loads into its job's typed config."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from handdiff.config import load_config
from pipelines.cli import JOBS
from pipelines.job import CONFIG_DIR, config_class, default_config_path

CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


def test_configs_are_shipped():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads(path: Path):
    job = yaml.safe_load(path.read_text())["job"]
    assert job in JOBS, f"{path.name}: job {job!r} is not a registered job"
    cfg = load_config(config_class(job), str(path))
    assert cfg.job == job
    assert path.read_text().startswith("#"), f"{path.name}: configs open with a comment saying how to launch them"


@pytest.mark.parametrize("job", [j for j in JOBS if j != "assets"])
def test_every_config_job_has_a_default_config(job):
    assert default_config_path(job).exists()


@pytest.mark.parametrize("job", ["annotate", "build-hand-crops", "train-hand", "build-outpaint-set", "train-body", "generate", "build-benchmark-set", "score", "benchmark"])
def test_demo_config_files_match_the_demo_configs(job):
    """The shipped *_demo.yaml files say what `make demo` runs (for workdir runs/demo)."""
    module = importlib.import_module(JOBS[job][0])
    shipped = load_config(module.Config, str(CONFIG_DIR / f"{job.replace('-', '_')}_demo.yaml"))
    assert shipped.model_dump(exclude={"tracking"}) == module.demo_config("runs/demo").model_dump(exclude={"tracking"})
