"""The ``handdiff`` command: ``handdiff <job> [--config FILE] [key=value ...]``.

Each job is also ``python -m pipelines.<job_with_underscores>``, which is what
``ray job submit --working-dir . -- python -m pipelines.<job> ...`` runs on a cluster.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

# name -> (module, one line for --help). Only jobs that work end to end are listed.
JOBS: dict[str, tuple[str, str]] = {
    "annotate": ("pipelines.annotate", "annotate datasets on Ray Data: keypoints, hand/person masks, captions -> Parquet"),
    "assets": ("pipelines.assets", "build the tiny model zoo or the sample datasets (assets {tiny-zoo,sample-data} --out DIR)"),
    "build-hand-crops": (
        "pipelines.build_hand_crops",
        "stage-1 training set: hand crops, per-finger keypoints, masks, captions -> Parquet",
    ),
    "train-hand": ("pipelines.train_hand", "train the stage-1 hand generator (UNet with 4 + 11 input channels, mask head) on Ray Train"),
    "build-outpaint-set": (
        "pipelines.build_outpaint_set",
        "stage-2 training set: framed people, hands-only canvases, hand masks, OpenPose skeletons -> Parquet",
    ),
    "train-body": (
        "pipelines.train_body",
        "train the stage-2 body ControlNet (OpenPose + hand-mask channel, latent blending) on Ray Train",
    ),
    "generate": ("pipelines.generate", "two-stage generation from pose conditions on Ray Data GPU actors -> PNGs + metadata Parquet"),
    "build-benchmark-set": (
        "pipelines.build_benchmark_set",
        "benchmark conditions: HaGRID test people sampled by gesture, framed, with the real side -> Parquet",
    ),
    "score": ("pipelines.score", "score generated images against their conditions: DAP, MPJPE, CLIPSIM, FID/KID fg, with intervals"),
    "benchmark": ("pipelines.benchmark", "generate and score every method on the benchmark set; Tables I and II beside the paper's"),
    "demo": ("pipelines.demo", "run the embedded default end to end: tiny models, sample data, local Ray and MLflow"),
}


def config_class(job: str):
    """The typed config of a job (a ``pipelines.job.JobConfig``): the ``Config`` class of its module."""
    return importlib.import_module(JOBS[job][0]).Config


def usage() -> str:
    width = max(map(len, JOBS))
    lines = [
        "usage: handdiff <job> [--config FILE] [--print-config] [key=value ...]",
        "",
        "Two-stage diffusion for pose-conditioned human images with correct hands, on Ray.",
        "",
        "jobs:",
        *(f"  {name:<{width}}  {summary}" for name, (_, summary) in JOBS.items()),
        "",
        "`handdiff <job> --help` explains a job and its config. On a Ray cluster:",
        "  ray job submit --working-dir . -- python -m pipelines.<job> --config pipelines/configs/<file>.yaml",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in JOBS:
        print(f"handdiff: unknown job {name!r}; jobs: {', '.join(JOBS)}", file=sys.stderr)
        return 2
    if any(arg in ("-h", "--help") for arg in rest) and name != "assets":
        # instant: the help comes from the module's docstring and the default config's YAML,
        # without importing the job (torch, Ray, diffusers)
        from pipelines.job import job_parser

        job_parser(name, module_docstring(JOBS[name][0])).parse_args(rest)
    module = importlib.import_module(JOBS[name][0])
    return module.main(rest)


def module_docstring(module: str) -> str | None:
    """A module's docstring, read from its source without importing it."""
    spec = importlib.util.find_spec(module)
    return ast.get_docstring(ast.parse(Path(spec.origin).read_text()))


if __name__ == "__main__":
    sys.exit(main())
