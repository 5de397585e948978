"""Score a ``generate`` output against its benchmark conditions (SPEC 7) on Ray Data: per image,
Mediapipe Holistic keypoints (CPU actors), the CLIP score and the Inception features of the real
and generated foregrounds (SAM person masks; GPU actors); then the paper's Table I figures with bootstrap 95 %
intervals and a per-gesture breakdown (beyond the paper).

DAP (xtcocotools OKS AP; whole body with COCO-WholeBody sigmas, hands with the hand sigmas, the
OKS scaled by the real person's area as COCO-WholeBody's evaluation does), MPJPE (image-size
units, with the detection rate), CLIPSIM (torchmetrics), FID fg / KID fg (torchmetrics, 192-d
Inception features, KID over subsets of min(1000, n) with its std) and whole-image FID (Table II).
Detected points follow annotation's presence rule (``min_visibility``, inside the image).
The real side (the conditions' person areas and real Inception features) depends on the
condition set alone: it is computed once under ``real`` (default ``<output>/real``) and reused by
every later run that points there (the benchmark keeps one per condition set for all its
methods). Per-image rows are written as resumable parts under ``<output>/records``; rows in =
scored + errors. ``score_outputs`` scores any number of methods' outputs in one Ray Data pass
with one set of actor pools (the benchmark's shared pass). The figures come from one evaluation
of those rows: the bootstrap (``bootstrap`` resamples of the conditions, drawn with ``seed`` so
that every method of a benchmark draws the same ones) and the breakdown re-accumulate its
per-image results instead of evaluating again. ``<output>/summary.json`` and the MLflow run hold
the figures, ``<output>/resamples.parquet`` every metric per resample (the benchmark's paired
comparisons read it); a rerun whose rows and figure settings are unchanged reuses them.

    handdiff score --config pipelines/configs/score_demo.yaml
    ray job submit --working-dir . -- python -m pipelines.score --config pipelines/configs/score.yaml
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import mlflow
import numpy as np
from pydantic import Field

from handdiff import storage
from handdiff.config import ConfigError, InputPath, StrictModel
from handdiff.data.keypoints import MIN_VISIBILITY
from handdiff.data.parts import parts_by_id, read_parts, write_index
from handdiff.data.records import ERROR_SCHEMA
from handdiff.data.work_rows import done_ids
from handdiff.inference.generate_stages import GENERATION_SCHEMA
from handdiff.metrics.images import KID_SUBSET_SIZE
from handdiff.metrics.keypoints import OksArea
from handdiff.metrics.score_stages import (
    SCORE_SCHEMA,
    DetectPeople,
    ImageScores,
    RealFeatures,
    real_inputs,
    score_inputs,
    write_real,
    write_scores,
)
from handdiff.metrics.summary import (
    METRICS,
    conventions,
    evaluate,
    figures,
    percentile_intervals,
    resampled_figures,
    score_by,
    write_resamples,
)
from handdiff.models.fingerprint import keep_fingerprints
from handdiff.models.sam import SamArch
from handdiff.provenance import code_version
from pipelines.job import JobConfig, TrackingConfig, job_run, run_job
from pipelines.ray_stages import (
    Resources,
    TaskResources,
    Written,
    index_dataset,
    map_actors,
    map_tasks,
    run_pass,
    run_to_parts,
    timing_line,
)

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
    real: str | None = None
    """Where the real side of the conditions is kept (per condition: target keypoints, person
    area, real foreground and whole-image Inception features), computed there for the conditions
    that lack it and reused by every run pointing there; default ``<output>/real``. Its
    ``models.json`` holds the Inception model's fingerprint: other contents are refused."""
    models: ScoringModels
    detection: Resources = Resources(actors=2, batch_size=16, num_cpus=1, num_gpus=0)
    """Mediapipe Holistic's CPU actors."""
    resources: Resources = Resources(actors=1, batch_size=16, num_cpus=2, num_gpus=1)
    """The GPU actors of SAM, CLIP and Inception (the real side's Inception too)."""
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

    def scoring(self) -> Scoring:
        return Scoring(
            self.conditions,
            self.real or storage.join(self.output, "real"),
            self.models,
            self.detection,
            self.resources,
            self.tasks,
            self.min_detection_confidence,
            self.min_visibility,
            self.index_rows_per_file,
        )

    def figure_settings(self) -> FigureSettings:
        return FigureSettings(
            self.bootstrap, self.seed, self.breakdown_by, self.kid_subset, self.oks_area, self.min_visibility, self.resample_workers
        )


@dataclass(frozen=True)
class Scoring:
    """How images are scored: the conditions and their real side, the models, the actor pools."""

    conditions: str
    real: str
    models: ScoringModels
    detection: Resources
    resources: Resources
    tasks: TaskResources
    min_detection_confidence: float = 0.5
    min_visibility: float = MIN_VISIBILITY
    rows_per_file: int = 64


@dataclass(frozen=True)
class FigureSettings:
    """How the figures are computed from the scored rows (``summarize``)."""

    bootstrap: int = 1000
    seed: int = 0
    breakdown_by: str | None = "gesture"
    kid_subset: int = KID_SUBSET_SIZE
    oks_area: OksArea = "person"
    min_visibility: float = MIN_VISIBILITY
    resample_workers: int | None = None
    whole_image_intervals: bool = True
    """Bootstrap the whole-image FID too (Table II shows it; Table I shows the foregrounds' alone)."""

    def identity(self) -> dict:
        """What the figures depend on (not how many processes computed them)."""
        return {k: v for k, v in asdict(self).items() if k != "resample_workers"}


def generated_rows(generated: str) -> list[dict]:
    columns = ["image_id", "dataset", "gesture", "method", "size", "caption", "image_uri"]
    return read_parts(f"{generated}/records", columns, GENERATION_SCHEMA).to_pylist()


def real_side(scoring: Scoring, ids: set[str]) -> Written | None:
    """Compute the real side of the conditions among ``ids`` that ``scoring.real`` lacks (one Ray
    Data pass: condition reads, Inception actors, writes); None when nothing was missing. Every
    requested condition ends as a real-side row or an error (checked)."""
    done = done_ids(scoring.real)
    try:
        keep_fingerprints(scoring.real, [scoring.models.inception], done)
    except ValueError as err:
        raise ConfigError(f"real side: {err}") from None
    where = parts_by_id(f"{scoring.conditions}/records")
    todo = [{"image_id": image_id, "part": where[image_id]} for image_id in sorted((ids & where.keys()) - done)]
    if not todo:
        return None
    log.info("real side: %d conditions to compute under %s", len(todo), scoring.real)
    _, index = write_index(todo, f"{scoring.real}/_index", done, scoring.rows_per_file)
    ds = map_tasks(index_dataset(index, scoring.tasks), real_inputs, scoring.tasks, code_version=code_version())
    ds = map_actors(ds, RealFeatures, scoring.resources, inception=scoring.models.inception, device=scoring.resources.device)
    written = run_to_parts(map_tasks(ds, write_real, scoring.tasks, output=scoring.real), "real side", log)
    now = done_ids(scoring.real)
    if missing := (ids & where.keys()) - now:
        raise RuntimeError(f"{scoring.real}: {len(missing)} conditions neither computed nor errors, e.g. {sorted(missing)[:3]}")
    return written


def score_outputs(scoring: Scoring, jobs: dict[str, str], index_dir: str) -> tuple[dict[str, dict[str, int]], dict[str, float]]:
    """Score every pending generated image of ``jobs`` (``generate`` output -> its scores' output)
    in one Ray Data pass with one set of actor pools (its work list under ``index_dir``), after the
    real side they need. Returns each output's counts (rows in = records + errors, checked) and
    the pass's timing (seconds, start-up, steady rate; the real side's seconds)."""
    rows_of = {generated: generated_rows(generated) for generated in jobs}
    scorers = [scoring.models.clip, scoring.models.sam, scoring.models.inception]
    done = {}
    for output in jobs.values():
        done[output] = done_ids(output)
        try:
            keep_fingerprints(output, scorers, done[output])
        except ValueError as err:
            raise ConfigError(str(err)) from None
    pending = [
        (output, r["image_id"]) for generated, output in jobs.items() for r in rows_of[generated] if r["image_id"] not in done[output]
    ]
    start = time.monotonic()
    real = real_side(scoring, {image_id for _, image_id in pending})
    timing = {"real_side_seconds": time.monotonic() - start if real else 0.0}
    real_parts = parts_by_id(f"{scoring.real}/records")
    entries = (
        {**row, "key": f"{output}#{row['image_id']}", "output": output, "part": real_parts.get(row["image_id"], "(no real side)")}
        for generated, output in jobs.items()
        for row in rows_of[generated]
    )
    skip = {f"{output}#{image_id}" for output, ids in done.items() for image_id in ids}
    started = time.monotonic()
    _, index = write_index(entries, index_dir, skip, scoring.rows_per_file, key="key")  # one work list for every output

    def pipeline():
        ds = map_tasks(index_dataset(index, scoring.tasks), score_inputs, scoring.tasks, code_version=code_version())
        ds = map_actors(
            ds,
            DetectPeople,
            scoring.detection,
            min_detection_confidence=scoring.min_detection_confidence,
            min_visibility=scoring.min_visibility,
        )
        ds = map_actors(ds, ImageScores, scoring.resources, **scoring.models.model_dump(), device=scoring.resources.device)
        return map_tasks(ds, write_scores, scoring.tasks)

    rows_in = {output: len(rows_of[generated]) for generated, output in jobs.items()}
    counts, scored = run_pass("score", pipeline if index else None, rows_in, log, pending=len(pending), started=started)
    return counts, {**timing, **scored}


def condition_ids(generated: str) -> list[str]:
    """The conditions a generate job was given (its images and its errors): the ids every
    method's resamples draw from, the same for every method of a benchmark (paired comparisons)."""
    ids = read_parts(f"{generated}/records", ["image_id"], GENERATION_SCHEMA).column("image_id").to_pylist()
    if storage.exists(f"{generated}/errors"):
        ids += read_parts(f"{generated}/errors", ["image_id"], ERROR_SCHEMA).column("image_id").to_pylist()
    return ids


def summarize(output: str, generated: str, settings: FigureSettings) -> dict:
    """Table I's figures of ``output``'s scored rows from one evaluation, with bootstrap intervals
    and the breakdown from the same evaluation, written to ``summary.json`` (and each metric per
    resample to ``resamples.parquet``, for paired comparisons). Reused as it is when the rows and
    the settings are those it was computed from."""
    rows = read_parts(f"{output}/records", schema=SCORE_SCHEMA).to_pylist()
    ids = condition_ids(generated)
    of = {"rows": len(rows), "conditions": len(ids), **settings.identity()}
    uri = storage.join(output, "summary.json")
    if storage.exists(uri) and (before := json.loads(storage.read_text(uri))).get("of") == of:
        return before
    used = conventions(settings.oks_area, settings.kid_subset, settings.min_visibility)
    result: dict = {"metrics": {}, "intervals": {}, "by": {}, "conventions": used, "of": of}
    samples: dict[str, np.ndarray] = {}
    if rows:
        with tempfile.TemporaryDirectory() as tmp:
            evaluation = evaluate(rows, tmp, settings.oks_area)
            metrics = figures(evaluation, kid_subset=settings.kid_subset)
            workers = settings.resample_workers or min(8, len(os.sched_getaffinity(0)))
            samples = {}
            if settings.bootstrap:
                samples = resampled_figures(evaluation, ids, settings.bootstrap, settings.seed, workers, settings.whole_image_intervals)
            by = score_by(rows, settings.breakdown_by, tmp, settings.kid_subset, evaluation=evaluation) if settings.breakdown_by else {}
        result.update(
            metrics=metrics,
            intervals=percentile_intervals(samples),
            by=by,
            method=rows[0]["method"],
            resamples=settings.bootstrap,
            seed=settings.seed,
        )
    if samples:
        write_resamples(samples, storage.join(output, "resamples.parquet"))
    storage.write_text(uri, json.dumps(result, indent=1, default=float))
    return result


def run(cfg: Config) -> int:
    with job_run(cfg) as active:
        counts, timing = score_outputs(cfg.scoring(), {cfg.generated: cfg.output}, storage.join(cfg.output, "_index"))
        counts = counts[cfg.output]
        total = sum(counts.values())
        result = summarize(cfg.output, cfg.generated, cfg.figure_settings())
        mlflow.log_metrics({k: float(v) for k, v in result["metrics"].items()})
        mlflow.log_metrics(
            {f"{k}_ci_{end}": float(v) for k, (lo, hi) in result["intervals"].items() for end, v in (("lo", lo), ("hi", hi))}
        )
        mlflow.log_metrics({"rows_in": total, **counts, **timing})
        mlflow.log_dict(result, "summary.json")
    print(f"\nscores under {cfg.output} (MLflow run {active.info.run_id}, experiment {cfg.experiment!r})")
    print(f"  rows {total} = scored {counts['records']} + errors {counts['errors']}; {timing_line(timing)}")
    for name in METRICS:
        value = result["metrics"].get(name, float("nan"))
        lo, hi = result["intervals"].get(name, (float("nan"), float("nan")))
        print(f"  {name:<12} {value:9.4f}  [{lo:.4f}, {hi:.4f}]")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="score", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
