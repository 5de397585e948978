"""Build the stage-2 training set from annotated datasets: each person framed square with the
canvas (the hands alone), the hand mask, the OpenPose skeleton and the caption (SPEC 3.4
"Outpainting"), written as Parquet parts.

The paper uses filtered LAION-Human (36,500 images: one person, at least 2,500 hand-mask
pixels, as ``annotate`` filters it); any annotated set with bodies works too. A record
without a body, hand masks or caption is an error row with its reason. Optionally
(beyond the paper) VAE latents of image and canvas and text embeddings are precomputed
on GPU actors. Rows in (selected images) = records + errors; a rerun resumes.

    handdiff build-outpaint-set --config pipelines/configs/build_outpaint_set_demo.yaml
    ray job submit --working-dir . -- python -m pipelines.build_outpaint_set --config pipelines/configs/build_outpaint_set.yaml
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Literal

import mlflow
import numpy as np
from pydantic import Field

from handdiff.data.images import decode_image
from handdiff.data.outpaint import DEFAULT_FILL, OUTPAINT_SCHEMA
from handdiff.data.parts import read_parts
from handdiff.data.rle import decode_rle
from handdiff.data.set_stages import outpaint_records, write_outpaint
from handdiff.models.encoders import EncodeOutpaint
from handdiff.viz import contact_sheet, overlay_mask
from pipelines.job import TrackingConfig, job_run, run_job
from pipelines.set_jobs import SetJobConfig, build_set, print_selection

log = logging.getLogger("handdiff.build_outpaint_set")


class Config(SetJobConfig):
    job: Literal["build-outpaint-set"] = "build-outpaint-set"
    tracking: TrackingConfig = TrackingConfig(run_name="build-outpaint-set")
    margin: float = Field(0.1, ge=0)
    """The person's square grows by this fraction of the person box's longer side per edge (our choice)."""
    fill: int = Field(DEFAULT_FILL, ge=0, le=255)
    """Canvas background, 0-255 grey (our choice: 127, which the VAE encodes near zero)."""
    contact_sheet_rows: int = Field(8, ge=1)


def outpaint_sheet(output: str, n: int) -> np.ndarray | None:
    """Per row: the framed image with its hand mask tinted, the skeleton, the canvas."""
    rows = read_parts(f"{output}/records", ["image", "mask", "skeleton", "canvas"], OUTPAINT_SCHEMA).slice(0, n).to_pylist()
    tiles = []
    for row in rows:
        tiles += [
            overlay_mask(decode_image(row["image"]), decode_rle(row["mask"])),
            decode_image(row["skeleton"]),
            decode_image(row["canvas"]),
        ]
    return contact_sheet(tiles, columns=6, cell=160) if tiles else None


def run(cfg: Config) -> int:
    with job_run(cfg) as active:
        built = build_set(
            cfg, outpaint_records, EncodeOutpaint, write_outpaint, "outpaint set", log, size=cfg.size, margin=cfg.margin, fill=cfg.fill
        )
        sheet = outpaint_sheet(cfg.output, cfg.contact_sheet_rows)
        if sheet is not None:
            mlflow.log_image(sheet, "contact_sheets/outpaint.png")
    print(f"\noutpaint set under {cfg.output} (MLflow run {active.info.run_id}, experiment {cfg.experiment!r})")
    print_selection(built)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="build-outpaint-set", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
