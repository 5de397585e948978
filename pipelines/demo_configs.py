"""The demo's job configs: the shipped ``pipelines/configs/<job>_demo.yaml`` files are their only
source. Those files say what ``make demo`` runs in ``runs/demo`` (and what a user reruns one job
with); the demo, the tests and the benchmarks load the same files with that workdir, and the
run-name prefix of the models the demo trained, put where they ask."""

from __future__ import annotations

from typing import Any

from handdiff import storage
from handdiff.config import read_yaml
from pipelines.cli import config_class
from pipelines.job import CONFIG_DIR, JobConfig, TrackingConfig

SHIPPED_WORKDIR = "runs/demo"
"""The workdir the shipped demo configs are written for."""
SHIPPED_RUNS_PREFIX = "demo"
"""The run-name prefix of the demo's runs in those files: ``runs/demo/train_hand/demo-train-hand/final_model``."""


def demo_config(
    job: str, workdir: str = SHIPPED_WORKDIR, tracking: TrackingConfig | None = None, runs_prefix: str = SHIPPED_RUNS_PREFIX
) -> Any:
    """``job``'s demo config (``pipelines/configs/<job>_demo.yaml``, ``job`` as the CLI names it) with
    every path under ``runs/demo`` moved under ``workdir``, the demo's trained models taken from the
    runs named ``<runs_prefix>-train-hand``/``-body``, and ``tracking`` in place of the file's."""
    data = _moved(read_yaml(str(CONFIG_DIR / f"{job.replace('-', '_')}_demo.yaml")), workdir, runs_prefix)
    if tracking is not None:
        data["tracking"] = tracking.model_dump()
    cfg: JobConfig = config_class(job).model_validate(data)
    return cfg


def _moved(value: Any, workdir: str, runs_prefix: str) -> Any:
    if isinstance(value, dict):
        return {key: _moved(item, workdir, runs_prefix) for key, item in value.items()}
    if isinstance(value, list):
        return [_moved(item, workdir, runs_prefix) for item in value]
    if not isinstance(value, str) or not (value == SHIPPED_WORKDIR or value.startswith(SHIPPED_WORKDIR + "/")):
        return value
    rest = value[len(SHIPPED_WORKDIR) + 1 :].replace(f"/{SHIPPED_RUNS_PREFIX}-train-", f"/{runs_prefix}-train-")
    return storage.join(workdir, rest) if rest else workdir
