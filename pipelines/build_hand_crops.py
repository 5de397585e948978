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

import logging
import sys
from collections.abc import Sequence
from typing import Literal

import mlflow
import numpy as np
from pydantic import Field

from handdiff.data.hand_crops import HAND_CROP_SCHEMA
from handdiff.data.images import decode_image
from handdiff.data.parts import read_parts
from handdiff.data.set_stages import crop_records, write_crops
from handdiff.models.encoders import EncodeCrops
from handdiff.viz import contact_sheet
from pipelines.job import TrackingConfig, job_run, run_job
from pipelines.set_jobs import SetJobConfig, build_set, print_selection

log = logging.getLogger("handdiff.build_hand_crops")


class Config(SetJobConfig):
    job: Literal["build-hand-crops"] = "build-hand-crops"
    tracking: TrackingConfig = TrackingConfig(run_name="build-hand-crops")
    margin: float = Field(0.25, ge=0)
    """Each side of the square grows by this fraction of the hand box's longer side (our choice)."""
    min_hand_points: int = Field(5, ge=1, le=21)
    """A hand gets a crop when at least this many of its keypoints are present (annotate's
    ``keypoints.min_hand_points``); the trained model carries it, and inference plans crops by it."""
    contact_sheet_crops: int = 24


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
    with job_run(cfg) as active:
        built = build_set(
            cfg,
            crop_records,
            EncodeCrops,
            write_crops,
            "hand crops",
            log,
            size=cfg.size,
            margin=cfg.margin,
            min_hand_points=cfg.min_hand_points,
        )
        crops = sum(len(c) for c in read_parts(f"{cfg.output}/records", ["crops"], HAND_CROP_SCHEMA).column("crops").to_pylist())
        mlflow.log_metric("crops", crops)
        sheet = crop_sheet(cfg.output, cfg.contact_sheet_crops)
        if sheet is not None:
            mlflow.log_image(sheet, "contact_sheets/hand_crops.png")
    print(f"\nhand crops under {cfg.output} (MLflow run {active.info.run_id}, experiment {cfg.experiment!r}): {crops} crops")
    print_selection(built)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="build-hand-crops", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
