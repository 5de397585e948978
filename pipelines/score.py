"""Score a ``generate`` output against its benchmark conditions (SPEC 7) on Ray Data: per image,
Mediapipe Holistic keypoints (CPU actors), the CLIP score and the Inception features of the real
and generated foregrounds (SAM person masks; GPU actors); then the paper's Table I figures with bootstrap 95 %
intervals and a per-gesture breakdown (beyond the paper).

DAP (xtcocotools OKS AP; whole body with COCO-WholeBody sigmas, hands with the hand sigmas, the
OKS scaled by the real person's area as COCO-WholeBody's evaluation does), MPJPE (image-size
units, with the detection rate), CLIPSIM (torchmetrics), FID fg / KID fg (torchmetrics, 192-d
Inception features, KID over subsets of min(1000, n) with its std) and whole-image FID (Table II).
Detected points follow annotation's presence rule (``min_visibility``, inside the image).
Per-image rows are written as resumable parts under ``<output>/records``; rows in = scored +
errors. The figures come from one evaluation of those rows: the bootstrap (``bootstrap``
resamples of the conditions, drawn with ``seed`` so that every method of a benchmark draws the
same ones) and the breakdown re-accumulate its per-image results instead of evaluating again.
``<output>/summary.json`` and the MLflow run hold the figures, ``<output>/resamples.parquet``
every metric per resample (the benchmark's paired comparisons read it).

    handdiff score --config pipelines/configs/score_demo.yaml
    ray job submit --working-dir . -- python -m pipelines.score --config pipelines/configs/score.yaml
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Literal

import mlflow
import numpy as np
from pydantic import Field

from handdiff import storage
from handdiff.config import InputPath, StrictModel
from handdiff.data.keypoints import MIN_VISIBILITY
from handdiff.data.parts import check_conservation, part_uris, read_part, read_parts, write_index, written_ids
from handdiff.data.records import ERROR_SCHEMA
from handdiff.data.work_rows import OUTPUTS
from handdiff.inference.generate_stages import GENERATION_SCHEMA
from handdiff.metrics.images import KID_SUBSET_SIZE
from handdiff.metrics.keypoints import OksArea
from handdiff.metrics.score_stages import SCORE_SCHEMA, DetectPeople, ImageScores, score_inputs, write_scores
from handdiff.metrics.summary import METRICS, conventions, evaluate, figures, percentile_intervals, resampled_figures, score_by, write_resamples
from handdiff.models.sam import SamArch
from handdiff.provenance import code_version
from pipelines.job import JobConfig, TrackingConfig, job_run, run_job
from pipelines.ray_stages import Resources, TaskResources, index_dataset, map_actors, map_tasks, run_to_parts

log = logging.getLogger("handdiff.score")


class ScoringModels(StrictModel):
    clip: str
    """CLIP for CLIPSIM: a path, s3:// prefix or hub id (openai/clip-vit-large-patch14)."""
    sam: str
    """SAM checkpoint for the generated people's masks (sam_vit_h_4b8939.pth)."""
    sam_arch: SamArch = "vit_h"
    inception: str
    """torch-fidelity's Inception-v3 weights file (pt_inception-2015-12-05-6726825d.pth)."""


class Config(JobConfig):
    job: Literal["score"] = "score"
    tracking: TrackingConfig = TrackingConfig(run_name="score")
    generated: InputPath
    """A ``generate`` output folder (its ``records/`` metadata and images)."""
    conditions: InputPath
    """The benchmark set the images were generated from (``build-benchmark-set`` output)."""
    output: str
    models: ScoringModels
    detection: Resources = Resources(actors=2, batch_size=16, num_cpus=1, num_gpus=0)
    """Mediapipe Holistic's CPU actors."""
    resources: Resources = Resources(actors=1, batch_size=16, num_cpus=2, num_gpus=1)
    """The GPU actors of SAM, CLIP and Inception."""
    tasks: TaskResources = TaskResources()
    bootstrap: int = Field(1000, ge=0)
    """Bootstrap resamples for the 95 % intervals and paired comparisons (0: none); cheap, since
    each resample re-accumulates one evaluation's per-image results. KID has none: its ± std is its spread."""
    breakdown_by: str | None = "gesture"
    resample_workers: int | None = Field(None, ge=1)
    """Processes the bootstrap resamples spread over in the driver (default: the driver's cores, at most 8)."""
    kid_subset: int = Field(KID_SUBSET_SIZE, ge=2)
    """KID's subset size (torchmetrics' default, 1,000; ``min(kid_subset, n)`` on smaller sets)."""
    oks_area: OksArea = "person"
    """DAP's OKS scale: ``person`` (COCO-WholeBody's: the real person's mask area, for hands too)
    or ``part_box`` (each part's visible-keypoint box; named in the tables when used)."""
    min_detection_confidence: float = Field(0.5, gt=0, lt=1)
    min_visibility: float = Field(MIN_VISIBILITY, gt=0, le=1)
    """A detected body or foot point counts only at this visibility, inside the image (as annotation)."""
    seed: int = 0
    index_rows_per_file: int = Field(64, ge=1)

    RESUME_SAFE = (*JobConfig.RESUME_SAFE, "resample_workers")
    """How many processes resample changes nothing they compute."""


def demo_config(workdir: str, tracking: TrackingConfig | None = None) -> Config:
    zoo = storage.join(workdir, "zoo")
    return Config(
        ray={"num_cpus": 8},
        tracking=tracking or TrackingConfig(run_name="score-demo"),
        generated=storage.join(workdir, "benchmark", "generated", "handdiff"),
        conditions=storage.join(workdir, "benchmark", "conditions"),
        output=storage.join(workdir, "benchmark", "scores", "handdiff"),
        models={"clip": storage.join(zoo, "clip"), "sam": storage.join(zoo, "sam", "sam_tiny.pth"), "sam_arch": "tiny",
                "inception": storage.join(zoo, "inception", "pt_inception-2015-12-05-6726825d.pth")},  # fmt: skip
        detection={"actors": 1, "batch_size": 4, "num_cpus": 0.5, "num_gpus": 0},
        resources={"actors": 1, "batch_size": 4, "num_cpus": 1, "num_gpus": 0},
        tasks={"num_cpus": 0.5, "concurrency": 2},
        bootstrap=20,
        index_rows_per_file=4,
    )


def score_entries(cfg: Config) -> list[dict]:
    """One index entry per generated image: its metadata and the condition part holding its real side."""
    where = {}
    for part in part_uris(f"{cfg.conditions}/records"):
        where.update(dict.fromkeys(read_part(part, ["image_id"]).column("image_id").to_pylist(), part))
    columns = ["image_id", "dataset", "gesture", "method", "size", "caption", "image_uri"]
    generated = read_parts(f"{cfg.generated}/records", columns, GENERATION_SCHEMA).to_pylist()
    return [{**row, "part": where.get(row["image_id"], "(no condition)")} for row in generated]


def condition_ids(cfg: Config) -> list[str]:
    """The conditions the generate job was given (its images and its errors): the ids every
    method's resamples draw from, the same for every method of a benchmark (paired comparisons)."""
    ids = read_parts(f"{cfg.generated}/records", ["image_id"], GENERATION_SCHEMA).column("image_id").to_pylist()
    if storage.exists(f"{cfg.generated}/errors"):
        ids += read_parts(f"{cfg.generated}/errors", ["image_id"], ERROR_SCHEMA).column("image_id").to_pylist()
    return ids


def summarize(cfg: Config) -> tuple[dict, dict[str, np.ndarray]]:
    """Table I's figures of the scored rows from one evaluation, with bootstrap intervals and the
    breakdown from the same evaluation; and each metric per resample (for paired comparisons)."""
    rows = read_parts(f"{cfg.output}/records", schema=SCORE_SCHEMA).to_pylist()
    used = conventions(cfg.oks_area, cfg.kid_subset, cfg.min_visibility)
    if not rows:
        return {"metrics": {}, "intervals": {}, "by": {}, "conventions": used}, {}
    with tempfile.TemporaryDirectory() as tmp:
        evaluation = evaluate(rows, tmp, cfg.oks_area)
        metrics = figures(evaluation, kid_subset=cfg.kid_subset)
        workers = cfg.resample_workers or min(8, len(os.sched_getaffinity(0)))
        samples = resampled_figures(evaluation, condition_ids(cfg), cfg.bootstrap, cfg.seed, workers) if cfg.bootstrap else {}
        by = score_by(rows, cfg.breakdown_by, tmp, cfg.kid_subset, evaluation=evaluation) if cfg.breakdown_by else {}
    result = {"metrics": metrics, "intervals": percentile_intervals(samples), "by": by, "method": rows[0]["method"], "conventions": used,
              "resamples": cfg.bootstrap, "seed": cfg.seed}  # fmt: skip
    return result, samples


def run(cfg: Config) -> int:
    device = "cuda" if cfg.resources.num_gpus > 0 else "cpu"
    with job_run(cfg) as active:
        entries = score_entries(cfg)
        done = set().union(*(written_ids(f"{cfg.output}/{t}") for t in OUTPUTS))
        total, index = write_index(entries, f"{cfg.output}/_index", done, cfg.index_rows_per_file)
        if index:
            ds = map_tasks(index_dataset(index, cfg.tasks), score_inputs, cfg.tasks, code_version=code_version())
            ds = map_actors(ds, DetectPeople, cfg.detection, min_detection_confidence=cfg.min_detection_confidence,
                            min_visibility=cfg.min_visibility)  # fmt: skip
            ds = map_actors(ds, ImageScores, cfg.resources, **cfg.models.model_dump(), device=device)
            run_to_parts(map_tasks(ds, write_scores, cfg.tasks, output=cfg.output), "score", log)
        counts = check_conservation(cfg.output, OUTPUTS, total)
        result, samples = summarize(cfg)
        storage.write_text(f"{cfg.output}/summary.json", json.dumps(result, indent=1, default=float))
        if samples:
            write_resamples(samples, f"{cfg.output}/resamples.parquet")
        mlflow.log_metrics({k: float(v) for k, v in result["metrics"].items()})
        mlflow.log_metrics({f"{k}_ci_{end}": float(v) for k, (lo, hi) in result["intervals"].items() for end, v in (("lo", lo), ("hi", hi))})
        mlflow.log_metrics({"rows_in": total, **counts})
        mlflow.log_dict(result, "summary.json")
    print(f"\nscores under {cfg.output} (MLflow run {active.info.run_id}, experiment {cfg.experiment!r})")
    print(f"  rows {total} = scored {counts['records']} + errors {counts['errors']}")
    for name in METRICS:
        value = result["metrics"].get(name, float("nan"))
        lo, hi = result["intervals"].get(name, (float("nan"), float("nan")))
        print(f"  {name:<12} {value:9.4f}  [{lo:.4f}, {hi:.4f}]")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="score", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
