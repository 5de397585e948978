"""Build the benchmark's condition set from annotated HaGRID test records (SPEC 7): images
sampled with a seed keeping the gesture distribution (largest-remainder quotas,
``selection.json``), each a condition for ``generate`` (keypoints and caption, the square
person framing resized to ``size``, a seed per image) holding the real side of the metrics
too: the real person framed the same way and its SAM person mask (for FID/KID fg).

Records without a body are not drawn; each is an error row with its reason. Rows in =
records + errors; a rerun resumes.

    handdiff build-benchmark-set --config pipelines/configs/build_benchmark_set_demo.yaml
    ray job submit --working-dir . -- python -m pipelines.build_benchmark_set --config pipelines/configs/build_benchmark_set.yaml
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Literal

import mlflow
import numpy as np
from pydantic import Field

from handdiff.data.conditions import BENCHMARK_SCHEMA
from handdiff.data.images import decode_image
from handdiff.data.parts import read_parts
from handdiff.data.rle import decode_rle
from handdiff.data.set_stages import benchmark_records, write_benchmark
from handdiff.data.skeleton import draw_skeleton
from handdiff.viz import contact_sheet, overlay_mask
from pipelines.job import TrackingConfig, job_run, run_job
from pipelines.set_jobs import SetJobConfig, build_set, print_selection

log = logging.getLogger("handdiff.build_benchmark_set")


class Config(SetJobConfig):
    job: Literal["build-benchmark-set"] = "build-benchmark-set"
    tracking: TrackingConfig = TrackingConfig(run_name="build-benchmark-set")
    margin: float = Field(0.1, ge=0)
    """Person framing margin (as the outpaint set: every method and the real side share it)."""
    contact_sheet_rows: int = Field(8, ge=1)


def benchmark_sheet(output: str, n: int) -> np.ndarray | None:
    """Per condition: the skeleton, the real person with its person mask tinted."""
    rows = read_parts(f"{output}/records", ["keypoints", "size", "real_image", "person_mask"], BENCHMARK_SCHEMA).slice(0, n).to_pylist()
    tiles = []
    for row in rows:
        tiles += [
            draw_skeleton(np.asarray(row["keypoints"], np.float32).reshape(133, 3), row["size"]),
            overlay_mask(decode_image(row["real_image"]), decode_rle(row["person_mask"])),
        ]
    return contact_sheet(tiles, columns=8, cell=128) if tiles else None


def run(cfg: Config) -> int:
    with job_run(cfg) as active:
        built = build_set(
            cfg,
            benchmark_records,
            None,
            write_benchmark,
            "benchmark set",
            log,
            required=("person_box", "no body keypoints"),
            size=cfg.size,
            margin=cfg.margin,
            seed=cfg.seed,
        )
        sheet = benchmark_sheet(cfg.output, cfg.contact_sheet_rows)
        if sheet is not None:
            mlflow.log_image(sheet, "contact_sheets/benchmark.png")
    print(f"\nbenchmark conditions under {cfg.output} (MLflow run {active.info.run_id}, experiment {cfg.experiment!r})")
    print_selection(built)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="build-benchmark-set", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
