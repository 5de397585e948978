"""Generate images from pose conditions on Ray Data (SPEC 6, 7): batch inference with a GPU
actor pool, any method behind ``handdiff.inference.generators`` (ours: ``handdiff``).

Conditions come from ``conditions`` (a folder with ``records/`` parts): a condition set
(``handdiff.data.conditions.CONDITION_SCHEMA``) or any annotated dataset, whose people are
framed square at ``size`` with a seed each (``seed + row number``). Each actor loads the
models once and generates ``resources.batch_size`` images per call, in one batched pass.
Images are PNGs at ``<output>/images/<image_id>.png``; metadata (method, strategy, hand-off,
seed, per-stage seconds, model ids, code version) are Parquet parts under ``<output>/records``;
conditions that cannot be generated are rows in ``<output>/errors``. Rows in = images +
errors; a rerun skips every condition already written, so a killed job writes nothing twice.

    handdiff generate --config pipelines/configs/generate_demo.yaml
    ray job submit --working-dir . -- python -m pipelines.generate --config pipelines/configs/generate.yaml
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
from pydantic import Field, model_validator

from handdiff import storage
from handdiff.config import ConfigError, InputPath, StrictModel
from handdiff.data.conditions import load_conditions
from handdiff.data.parts import read_parts, write_part
from handdiff.data.records import ERROR_SCHEMA, to_table
from handdiff.data.skeleton import HUMANSD_THRESHOLD
from handdiff.data.work_rows import done_ids
from handdiff.inference.generate_stages import GENERATION_SCHEMA, GenerateImages, conditions_to_rows, write_generated
from handdiff.inference.settings import TwoStageSettings
from handdiff.provenance import code_version
from handdiff.tracking import log_pipeline_model
from pipelines.job import JobConfig, TrackingConfig, job_run, run_job
from pipelines.ray_stages import Resources, TaskResources, index_dataset, map_actors, map_tasks, run_pass, timing_line, work_list

log = logging.getLogger("handdiff.generate")


class ConditionsSection(StrictModel):
    path: InputPath
    """A condition set or an annotated dataset: the folder holding its ``records/``."""
    count: int | None = Field(None, ge=1)
    """The first ``count`` conditions (all by default)."""
    size: int = Field(512, ge=32)
    """Output side for conditions made from annotated records."""
    margin: float = Field(0.1, ge=0)
    """Person framing margin for conditions made from annotated records (as the outpaint set)."""
    seed: int = 0
    """Conditions made from annotated records get ``seed + row number``."""


class HandDiffSection(TwoStageSettings):
    """Ours (``method: handdiff``): the two trained stages and the two-stage settings
    (``handdiff.inference.settings.TwoStageSettings``: steps, guidance, mask threshold, strategy,
    SME kernel, unmasked last steps, hand-off)."""

    hand_model: str
    """The stage-1 pipeline: train-hand's ``final_model`` (a path or s3:// prefix)."""
    body_model: str
    """The stage-2 pipeline: train-body's ``final_model``."""
    crop_size: int | None = Field(None, ge=32)
    """Unset: the hand model's own (saved at training from its crop set). A value that differs
    from the model's stops the job before it starts."""
    crop_margin: float | None = Field(None, ge=0)
    """The crop rule's margin; unset: the hand model's own (build-hand-crops' ``margin``), as ``crop_size``."""


class BaselineSection(StrictModel):
    """The baselines (``method: sd15 | controlnet-openpose | t2i-adapter-openpose | humansd | handrefiner``),
    each driven as its authors' code drives it (``handdiff.inference.baselines``)."""

    base: str
    """SD 1.5: a path, s3:// prefix or hub id (stable-diffusion-v1-5/stable-diffusion-v1-5)."""
    controlnet: str | None = None
    """controlnet-openpose: ControlNet 1.1's lllyasviel/control_v11p_sd15_openpose (our choice;
    1.0's lllyasviel/sd-controlnet-openpose with ``controlnet_pose: body``)."""
    controlnet_pose: Literal["body+hands", "body"] = "body+hands"
    """The skeleton the ControlNet gets: 1.1 was trained on body + hand drawings, 1.0 on the body alone."""
    adapter: str | None = None
    """t2i-adapter-openpose: TencentARC/t2iadapter_openpose_sd14v1."""
    humansd: str | None = None
    """humansd: a diffusers folder with HumanSD's 8-channel UNet (converted once from humansd-v1.ckpt; see the README)."""
    humansd_pose_threshold: float = Field(HUMANSD_THRESHOLD, ge=0, lt=1)
    """Keypoints HumanSD draws: above this score (its inference default 0.05)."""
    handrefiner: str | None = None
    """handrefiner: the depth inpainting ControlNet (control_sd15_inpaint_depth_hand, in diffusers format)."""
    inpainting: str | None = None
    """handrefiner: SD 1.5's 9-channel inpainting pipeline whose UNet the ControlNet steers
    (stable-diffusion-v1-5/stable-diffusion-inpainting, or the UNet of HandRefiner's fine-tuned checkpoint)."""
    handrefiner_control_scale: float = Field(0.55, ge=0)
    """HandRefiner's ``--strength``, the ControlNet's scale (0.55 as its README's example)."""
    handrefiner_steps: int = Field(50, ge=1)
    """HandRefiner's DDIM steps (fixed at 50 in handrefiner.py)."""
    handrefiner_guidance: float = 9.0
    """HandRefiner's guidance scale (9.0 in handrefiner.py)."""
    sd_images: str | None = None
    """handrefiner: a ``generate`` output of ``sd15`` with the same base, steps, guidance and dtype
    on these conditions, whose images HandRefiner refines instead of drawing them again (the same
    images: each from its condition's seed). ``benchmark`` sets it when it has both rows."""
    steps: int = Field(50, ge=1)
    guidance: float | None = None
    """Unset: each method's authors' own (SD 7.5, ControlNet 9, T2I-Adapter 7.5, HumanSD 10); a value applies to all."""


BASELINE_MODELS = {
    "sd15": (),
    "controlnet-openpose": ("controlnet",),
    "t2i-adapter-openpose": ("adapter",),
    "humansd": ("humansd",),
    "handrefiner": ("handrefiner", "inpainting"),
}
"""The model locations each baseline needs."""
BASELINE_OPTIONS = {
    "controlnet-openpose": {"pose": "controlnet_pose"},
    "humansd": {"pose_threshold": "humansd_pose_threshold"},
    "handrefiner": {k: k for k in ("handrefiner_control_scale", "handrefiner_steps", "handrefiner_guidance", "sd_images")},
}
"""Each baseline's own settings: generator keyword -> ``BaselineSection`` field."""


def baseline_fields(method: str) -> set[str]:
    """The ``BaselineSection`` fields ``method`` reads: a benchmark keys and logs each method by these alone."""
    return {"base", "steps", "guidance", *BASELINE_MODELS.get(method, ()), *BASELINE_OPTIONS.get(method, {}).values()}


class Config(JobConfig):
    job: Literal["generate"] = "generate"
    tracking: TrackingConfig = TrackingConfig(run_name="generate")
    conditions: ConditionsSection
    output: str
    method: Literal["handdiff", "oracle", "sd15", "controlnet-openpose", "t2i-adapter-openpose", "humansd", "handrefiner"] = "handdiff"
    """``handdiff`` (ours), ``oracle`` (each condition's real image, from a benchmark set: every
    metric's ceiling) or a diffusers baseline (the ``baseline`` section)."""
    handdiff: HandDiffSection | None = None
    baseline: BaselineSection | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    """Model dtype on GPUs; CPUs always use float32."""
    resources: Resources = Resources(actors=1, batch_size=16, num_gpus=1)
    tasks: TaskResources = TaskResources()
    keep_canvas: bool = True
    """Also write each image's intermediates: ours, the stage-1 hands on the canvas under ``canvases/``
    and stage 1's crops over their predicted mask probabilities under ``stage1/``."""
    index_rows_per_file: int = Field(64, ge=1)
    contact_sheet_images: int = Field(8, ge=1)
    registered_model: str | None = None
    """Ours: also log the two-stage pipeline (the two stages' models) as an MLflow pyfunc in this
    run and register it under this name (``mlflow.pyfunc.load_model("models:/<name>/<version>")``)."""

    def preflight(self) -> None:
        if self.method == "handdiff":
            check_trained_settings(self.handdiff, "handdiff")

    @model_validator(mode="after")
    def _method_has_its_models(self) -> Config:
        if self.method == "handdiff" and self.handdiff is None:
            raise ValueError("method handdiff needs the handdiff section (hand_model, body_model)")
        if self.method in BASELINE_MODELS:
            missing = [m for m in BASELINE_MODELS[self.method] if self.baseline is None or getattr(self.baseline, m) is None]
            if self.baseline is None or missing:
                raise ValueError(f"method {self.method} needs the baseline section with base{''.join(', ' + m for m in missing)}")
        return self

    def model_locations(self) -> list[str]:
        """Every model location the method loads (what ``models.json`` fingerprints)."""
        if self.method == "handdiff":
            return [self.handdiff.hand_model, self.handdiff.body_model]
        if self.method in BASELINE_MODELS:
            return [self.baseline.base, *(getattr(self.baseline, m) for m in BASELINE_MODELS[self.method])]
        return []

    def generator_options(self) -> dict:
        if self.method == "oracle":
            return {"conditions": self.conditions.path}
        on = self.resources.device  # on_device: a GPU node's actor may compute on its CPU (logical GPUs, as in tests)
        device = {"device": on, "dtype": self.dtype if on == "cuda" else "float32"}
        if self.method == "handdiff":
            return {**self.handdiff.model_dump(), **device}
        b = self.baseline
        options = {key: getattr(b, name) for key, name in BASELINE_OPTIONS.get(self.method, {}).items()}
        models = {m: getattr(b, m) for m in BASELINE_MODELS[self.method]}
        return {"base": b.base, "steps": b.steps, "guidance": b.guidance, **models, **options, **device}


def check_trained_settings(section: HandDiffSection, where: str) -> None:
    """``ConfigError`` when ``section`` sets a value that contradicts what its hand model was
    trained with, read from the model's small config file (no weights are fetched); a hub id is
    checked when the actors load it."""
    from handdiff.inference.two_stage import check_against_trained
    from handdiff.models.hand_generator import read_crop_settings

    try:
        trained = read_crop_settings(section.hand_model)
        if trained is not None:
            check_against_trained({"crop_size": section.crop_size, "crop_margin": section.crop_margin}, trained, where)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"{where}: {err}" if "hand_generator.json" in str(err) else str(err)) from None


def contact_sheet(cfg: Config, conditions: list[dict]) -> np.ndarray | None:
    """One image per row, its columns labelled: the condition's pose, stage 1's crops and their
    predicted masks (ours, pixel hand-off), the canvas (the method's intermediate), the output."""
    from handdiff.data.images import decode_image
    from handdiff.data.skeleton import draw_skeleton
    from handdiff.viz import contact_sheet as sheet

    rows = read_parts(f"{cfg.output}/records", schema=GENERATION_SCHEMA).slice(0, cfg.contact_sheet_images).to_pylist()
    if not rows:
        return None
    conditions = {c["image_id"]: c for c in conditions}
    columns = ["pose"] + (["stage-1 crops", "stage-1 masks"] if any(r.get("stage1_uri") for r in rows) else [])
    columns += ["canvas"] if any(r["canvas_uri"] for r in rows) else []
    columns.append(cfg.method)
    tiles = []
    for row in rows:
        image = decode_image(storage.read_bytes(row["image_uri"]))
        blank = np.zeros_like(image)
        keypoints = (
            np.asarray(conditions[row["image_id"]]["keypoints"], np.float32).reshape(133, 3) if row["image_id"] in conditions else None
        )
        tiles.append(draw_skeleton(keypoints, row["size"]) if keypoints is not None else blank)
        if "stage-1 crops" in columns:
            strip = decode_image(storage.read_bytes(row["stage1_uri"])) if row.get("stage1_uri") else None
            half = strip.shape[0] // 2 if strip is not None else 0
            tiles += [strip[:half], strip[half:]] if strip is not None else [blank, blank]
        if "canvas" in columns:
            tiles.append(decode_image(storage.read_bytes(row["canvas_uri"])) if row["canvas_uri"] else blank)
        tiles.append(image)
    labels = [*columns, *[""] * (len(tiles) - len(columns))]
    return sheet(tiles, columns=len(columns), cell=160, labels=labels)


def register_two_stage(section: HandDiffSection, name: str) -> None:
    """Log the two trained stages as one two-stage pyfunc model and register it as ``name``."""
    from handdiff.models.loading import resolve
    from handdiff.serving import two_stage_pyfunc

    artifacts = {"hand": resolve(section.hand_model), "body": resolve(section.body_model)}
    log_pipeline_model(artifacts, "two_stage", two_stage_pyfunc, name)


def check_models(cfg: Config, done: set[str]) -> dict[str, str]:
    """The fingerprints of the models (``handdiff.models.fingerprint``), kept as ``<output>/models.json``.
    An output already holding images of other model contents (a model retrained in place since)
    is refused: resuming would mix two models' images in one set."""
    from handdiff.models.fingerprint import keep_fingerprints

    try:
        return keep_fingerprints(cfg.output, cfg.model_locations(), done)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def run(cfg: Config) -> int:
    options = cfg.generator_options()
    with job_run(cfg) as active:
        started = time.monotonic()
        conditions, bad = load_conditions(**cfg.conditions.model_dump())
        done = done_ids(cfg.output)
        models = check_models(cfg, done)  # before the work list: a retrained model is refused first
        todo = work_list(cfg.output, conditions, cfg.index_rows_per_file, done)
        mlflow.set_tags({f"model.{i}": f"{location} {digest}" for i, (location, digest) in enumerate(sorted(models.items()))})
        if bad:
            write_part(to_table([e for e in bad if e["image_id"] not in todo.done], ERROR_SCHEMA), f"{cfg.output}/errors")
        rows_in = todo.total + len(bad)
        log.info("%d conditions, %d already generated, %d to generate", rows_in, len(todo.done), todo.pending)

        def pipeline():
            ds = map_tasks(
                index_dataset(todo.index, cfg.tasks), conditions_to_rows, cfg.tasks, method=cfg.method, code_version=code_version()
            )
            ds = map_actors(ds, GenerateImages, cfg.resources, method=cfg.method, options=options, keep_canvas=cfg.keep_canvas)
            return map_tasks(ds, write_generated, cfg.tasks, output=cfg.output)

        counts, timing = run_pass(
            "generate", pipeline if todo.index else None, {cfg.output: rows_in}, log, pending=todo.pending, started=started
        )
        counts = counts[cfg.output]
        meta = read_parts(f"{cfg.output}/records", ["seconds", "stage_seconds"], GENERATION_SCHEMA).to_pylist()
        stages: dict[str, float] = {}
        for row in meta:
            for stage, value in json.loads(row["stage_seconds"]).items():
                stages[stage] = stages.get(stage, 0.0) + value / len(meta)
        summary = {
            "rows_in": rows_in,
            **counts,
            "resumed_from": len(todo.done),
            **timing,
            **{f"seconds_per_image.{k}": v for k, v in stages.items()},
        }
        mlflow.log_metrics({k: float(v) for k, v in summary.items()})
        sheet = contact_sheet(cfg, conditions)
        if sheet is not None:
            mlflow.log_image(sheet, "contact_sheets/generated.png")
        if cfg.registered_model and cfg.handdiff:
            register_two_stage(cfg.handdiff, cfg.registered_model)
    print(f"\ngenerated under {cfg.output}/images (MLflow run {active.info.run_id}, experiment {cfg.experiment!r})")
    print(f"  rows {rows_in} = images {counts['records']} + errors {counts['errors']}; {timing_line(timing)}")
    if stages:
        print("  seconds per image: " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="generate", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
