"""Every shipped config loads into its job's typed config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from handdiff.config import load_config
from pipelines.cli import JOBS, config_class
from pipelines.job import CONFIG_DIR, default_config_path

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
