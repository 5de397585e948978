"""The demo configs: the shipped *_demo.yaml files, moved to a workdir (pipelines.demo_configs)."""

from __future__ import annotations

import pytest

from handdiff.config import flatten, load_config
from pipelines.cli import config_class
from pipelines.demo_configs import demo_config
from pipelines.job import CONFIG_DIR, TrackingConfig


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
