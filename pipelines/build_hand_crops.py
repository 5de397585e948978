"""Build the stage-1 training set from annotated datasets: square hand crops with their
keypoints, masks and captions (SPEC 3.4), written as Parquet parts.

Sources are mixed by counts, sampled with a seed; ``stratify_by: gesture`` keeps
HaGRID's gesture distribution. A row holds every candidate crop of its image (one
crop when the two hands' boxes intersect, else one per hand): the trainer draws one
at random each epoch. Optionally (beyond the paper) VAE latents and text embeddings
are precomputed on GPU actors. Rows in (selected images) = records + errors; a rerun
resumes.

    handdiff build-hand-crops --config pipelines/configs/build_hand_crops_demo.yaml
    ray job submit --working-dir . -- python -m pipelines.build_hand_crops --config pipelines/configs/build_hand_crops.yaml
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Literal

import mlflow
import numpy as np
from pydantic import Field

from handdiff import storage
from handdiff.config import StrictModel
from handdiff.data.crop_stages import crop_records, write_crops
from handdiff.data.hand_crops import HAND_CROP_SCHEMA, share, stratified_sample
from handdiff.data.images import decode_image
from handdiff.data.parts import check_conservation, index_rows, part_uris, read_part, read_parts, write_index, written_ids
from handdiff.data.work_rows import OUTPUTS
from handdiff.models.encoders import EncodeCrops
from handdiff.provenance import code_version
from handdiff.tracking import tracked_run
from handdiff.viz import contact_sheet
from pipelines.job import JobConfig, TrackingConfig, run_job
from pipelines.ray_stages import Resources, TaskResources, index_dataset, map_actors, map_tasks, run_to_parts

log = logging.getLogger("handdiff.build_hand_crops")


class CropSource(StrictModel):
    path: str
    """An annotated dataset: the folder holding its records/ (``<annotate output>/<name>``)."""
    count: int | None = Field(None, ge=1)
    """How many of its images to use (all by default, or when it has fewer)."""
    stratify_by: Literal["gesture"] | None = None
    """Keep this column's distribution when sampling (HaGRID: gesture)."""
    splits: list[str] = Field(default_factory=lambda: ["train"], min_length=1)
    """Only records of these splits are drawn: training never sees test images (HaGRID's test
    split is the benchmark; Re:InterHand's test captures are tagged ``test``)."""


class Precompute(StrictModel):
    base: str
    """The SD 1.5 pipeline whose VAE and text encoder encode the crops."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    resources: Resources = Resources(actors=1, batch_size=16, num_gpus=1)


class Config(JobConfig):
    job: Literal["build-hand-crops"] = "build-hand-crops"
    tracking: TrackingConfig = TrackingConfig(run_name="build-hand-crops")
    sources: dict[str, CropSource]
    output: str
    size: int = Field(512, ge=32)
    """Crop side, pixels (SD 1.5: 512)."""
    margin: float = Field(0.25, ge=0)
    """Each side of the square grows by this fraction of the hand box's longer side (our choice)."""
    seed: int = 0
    tasks: TaskResources = TaskResources()
    precompute: Precompute | None = None
    """Precompute VAE latents and text embeddings (beyond the paper: faster training, fixed pixels)."""
    index_rows_per_file: int = 64
    contact_sheet_crops: int = 24


def demo_config(workdir: str, tracking: TrackingConfig | None = None) -> Config:
    """The crop set of the embedded default, from the demo's annotations (pipelines/configs/build_hand_crops_demo.yaml)."""
    annotated = storage.join(workdir, "annotated")
    return Config(
        ray={"num_cpus": 8},
        tracking=tracking or TrackingConfig(run_name="build-hand-crops-demo"),
        sources={"interhand26m": {"path": storage.join(annotated, "interhand26m")},
                 "reinterhand": {"path": storage.join(annotated, "reinterhand")},
                 "hagrid": {"path": storage.join(annotated, "hagrid"), "count": 20, "stratify_by": "gesture"}},  # fmt: skip
        output=storage.join(workdir, "hand_crops"),
        size=128,
        tasks={"batch_size": 8, "num_cpus": 0.5, "concurrency": 2},
        index_rows_per_file=8,
    )


def select(cfg: Config) -> tuple[list[dict], dict]:
    """The index entries of every selected image, and a report of the selection."""
    entries, report = [], {}
    columns = ["image_id", "gesture", "dataset", "split"]
    for name, source in cfg.sources.items():
        parts = part_uris(f"{source.path}/records")
        if not parts:
            raise FileNotFoundError(f"source {name}: no annotated records under {source.path}/records")
        every = [{**r, "part": part} for part in parts for r in read_part(part, columns).to_pylist()]
        rows = [r for r in every if r["split"] in source.splits]
        ids = [r["image_id"] for r in rows]
        strata = [r["gesture"] if source.stratify_by == "gesture" else None for r in rows]
        if source.count and source.count > len(ids):
            log.warning("source %s has %d images, fewer than the %d asked for: using all", name, len(ids), source.count)
        chosen = set(stratified_sample(ids, strata, source.count or len(ids), cfg.seed))
        report[name] = {"available": len(ids), "selected": len(chosen), "splits": source.splits, "other_splits": len(every) - len(rows)}
        if source.stratify_by:
            report[name]["share_available"] = share(strata)
            report[name]["share_selected"] = share([s for r, s in zip(rows, strata, strict=True) if r["image_id"] in chosen])
        # each entry names its annotated part, so that crop tasks read only what they need
        entries += [{"image_id": r["image_id"], "part": r["part"], "dataset": r["dataset"]} for r in rows if r["image_id"] in chosen]
    return entries, report


def crop_sheet(output: str, n: int) -> np.ndarray | None:
    """A contact sheet of up to ``n`` crops with their masks tinted red and keypoints drawn."""
    from handdiff.data.rle import decode_rle
    from handdiff.viz import draw_keypoints, overlay_mask

    rows = read_parts(f"{output}/records", schema=HAND_CROP_SCHEMA).slice(0, n).to_pylist()
    tiles = []
    for row in rows:
        for crop in row["crops"]:
            keypoints = np.zeros((133, 3), np.float32)
            keypoints[91:133] = np.asarray(crop["keypoints"], np.float32).reshape(42, 3)
            tiles.append(draw_keypoints(overlay_mask(decode_image(crop["image"]), decode_rle(crop["mask"])), keypoints))
    return contact_sheet(tiles[:n], columns=8, cell=160) if tiles else None


def run(cfg: Config) -> int:
    with tracked_run(cfg.experiment, cfg.tracking.run_name, cfg.model_dump(mode="json"), tracking_uri=cfg.tracking.tracking_uri,
                     resume=cfg.tracking.resume, tags={"code_version": code_version()}) as active:  # fmt: skip
        entries, report = select(cfg)
        done = set().union(*(written_ids(f"{cfg.output}/{t}") for t in OUTPUTS))
        total, index = write_index(entries, f"{cfg.output}/_index", done, cfg.index_rows_per_file)
        pending = index_rows(index)
        log.info("%d images selected, %d already cropped, %d to crop", total, len(done), pending)
        start = time.perf_counter()
        if index:
            ds = index_dataset(index, cfg.tasks)
            ds = map_tasks(ds, crop_records, cfg.tasks, size=cfg.size, margin=cfg.margin, code_version=code_version())
            if cfg.precompute is not None:
                p = cfg.precompute
                ds = map_actors(ds, EncodeCrops, p.resources, base=p.base, device=p.resources.device, dtype=p.dtype)
            run_to_parts(map_tasks(ds, write_crops, cfg.tasks, output=cfg.output), "hand crops", log)
        seconds = time.perf_counter() - start
        counts = check_conservation(cfg.output, OUTPUTS, total)
        crops = sum(len(c) for c in read_parts(f"{cfg.output}/records", ["crops"], HAND_CROP_SCHEMA).column("crops").to_pylist())
        summary = {"rows_in": total, **counts, "crops": crops, "resumed_from": len(done), "seconds": seconds,
                   "images_per_second": pending / seconds if seconds else 0.0}  # fmt: skip
        storage.write_text(f"{cfg.output}/selection.json", json.dumps(report, indent=1))
        mlflow.log_metrics({k: float(v) for k, v in summary.items()})
        mlflow.log_dict(report, "selection.json")
        sheet = crop_sheet(cfg.output, cfg.contact_sheet_crops)
        if sheet is not None:
            mlflow.log_image(sheet, "contact_sheets/hand_crops.png")
    print(f"\nhand crops under {cfg.output} (MLflow run {active.info.run_id}, experiment {cfg.experiment!r})")
    for name, r in report.items():
        print(f"  {name:<14} {r['selected']:>7} of {r['available']:>7} images of {'/'.join(r['splits'])} ({r['other_splits']} of other splits left out)")
    print(f"  rows {total} = records {counts['records']} + errors {counts['errors']}; {crops} crops; {summary['images_per_second']:.1f} images/s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="build-hand-crops", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
