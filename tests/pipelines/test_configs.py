"""Every shipped config loads into its job's typed config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from handdiff.config import flatten, load_config
from pipelines.cli import JOBS, config_class
from pipelines.demo_configs import demo_config
from pipelines.job import CONFIG_DIR, TrackingConfig, default_config_path

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


@pytest.mark.parametrize(
    "job",
    [
        "annotate",
        "build-hand-crops",
        "train-hand",
        "build-outpaint-set",
        "train-body",
        "generate",
        "build-benchmark-set",
        "score",
        "benchmark",
    ],
)
def test_a_demo_config_put_elsewhere_is_the_shipped_file_but_for_its_paths(job):
    """The shipped *_demo.yaml files are the demo's only source: elsewhere, every value stays but
    the paths under runs/demo, which move, and the demo's trained models, taken from its runs."""
    shipped = load_config(config_class(job), str(CONFIG_DIR / f"{job.replace('-', '_')}_demo.yaml"))
    moved = demo_config(job, "/elsewhere/w", TrackingConfig(run_name="mine-x"), runs_prefix="mine")
    before, after = flatten(shipped.model_dump(mode="json")), flatten(moved.model_dump(mode="json"))
    assert before.keys() == after.keys() and after["tracking.run_name"] == "mine-x"
    for key in before.keys() - {"tracking.run_name"}:
        value = before[key]
        if isinstance(value, str) and value.startswith("runs/demo/"):
            assert after[key] == "/elsewhere/w/" + value.removeprefix("runs/demo/").replace("/demo-train-", "/mine-train-"), key
        else:
            assert after[key] == value, key
    assert any(isinstance(v, str) and v.startswith("runs/demo/") for v in before.values())  # the file has paths to move
