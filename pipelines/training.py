"""What the two Ray Train jobs (``train-hand``, ``train-body``) share: the config sections, the
worker's optimisation loop with checkpoints, resume and rank-0 MLflow logging, and the
driver's ``TorchTrainer`` run with the final model's export, logging and registration.

Each job supplies what differs as a ``Stage``: the trainable model and frozen parts, the
training step on a batch, the sample grid and how the final model is exported. Ranks,
devices, DDP and rank-0 side effects live here and in the jobs, never in ``handdiff``.

Resuming: starting the same ``tracking.run_name`` again continues from the run's latest
checkpoint at its step, in the same MLflow run (the epoch in progress restarts from its
beginning; the data position is not checkpointed). A killed worker restarts the worker
group from the latest checkpoint Ray Train has *committed* (``max_failures``).
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient
from pydantic import Field, model_validator

from handdiff import storage
from handdiff.config import InputPath, StrictModel
from pipelines import waits
from pipelines.job import JobConfig, job_run, route_ray_logs
from pipelines.ray_stages import ScalingSection, TaskResources

log = logging.getLogger("handdiff.training")


class DataSection(StrictModel):
    path: InputPath
    """The training set: the output folder of its build job."""
    validation_rows: int = Field(4, ge=1)
    """Rows of the set (the first ones) whose conditions are drawn in the sample grids."""
    shuffle_buffer: int = Field(256, ge=0)
    tasks: TaskResources = TaskResources(num_cpus=1, concurrency=4)


class TrainSection(StrictModel):
    """Optimisation settings both stages share; each job adds its own."""

    steps: int = Field(ge=1)
    """Optimizer steps in all."""
    batch_size: int = Field(32, ge=1)
    """Global batch: per-worker batch x workers x grad_accumulation."""
    grad_accumulation: int = Field(1, ge=1)
    lr: float = Field(1e-5, gt=0)
    lr_schedule: str = "constant_with_warmup"
    """Any diffusers.optimization schedule name."""
    warmup_steps: int = Field(500, ge=0)
    weight_decay: float = Field(1e-2, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float = Field(1.0, gt=0)
    mixed_precision: Literal["no", "bf16"] = "bf16"
    """bf16 autocast on GPUs; ignored on CPU."""
    gradient_checkpointing: bool = True
    ema_decay: float | None = Field(None, gt=0, lt=1)
    caption_dropout: float = Field(0.1, ge=0, le=1)
    """Our choice (the paper does not say): empty captions for classifier-free guidance."""
    seed: int = 0


class CheckpointSection(StrictModel):
    storage_path: str
    """Where Ray Train keeps runs and checkpoints: a local path or s3:// prefix."""
    every_steps: int = Field(500, ge=1)
    num_to_keep: int = Field(3, ge=1)
    max_failures: int = Field(3, ge=0)
    """Worker-group restarts from the latest committed checkpoint before the run fails."""


class LoggingSection(StrictModel):
    every_steps: int = Field(10, ge=1)
    sample_every_steps: int = Field(500, ge=1)
    sample_inference_steps: int = Field(25, ge=1)
    guidance_scale: float = 7.5


class TrainJobConfig(JobConfig):
    """The sections every training job has (``train`` is each job's ``TrainSection`` subclass)."""

    data: DataSection
    train: TrainSection
    scaling: ScalingSection = ScalingSection()
    checkpoint: CheckpointSection
    logging: LoggingSection = LoggingSection()
    registered_model: str | None = None
    """Register the final model under this name in MLflow (None: log it only)."""

    MODEL_PATHS: ClassVar[tuple[str, ...]] = ()
    """``model`` fields that may name local folders (made absolute by ``resolved``)."""

    RESUME_SAFE = (
        *JobConfig.RESUME_SAFE,
        "train.steps",
        "checkpoint.max_failures",
        "checkpoint.num_to_keep",
        "logging.*",
        "data.tasks.*",
        "scaling.cpus_per_worker",
    )
    """A resume may train further (``train.steps``; a schedule tied to the total steps then bends
    where it resumes), keep other checkpoints, log differently or read faster."""

    @model_validator(mode="after")
    def _batch_divides(self) -> TrainJobConfig:
        per = self.scaling.workers * self.train.grad_accumulation
        if self.train.batch_size % per:
            raise ValueError(f"train.batch_size {self.train.batch_size} is not a multiple of workers x grad_accumulation = {per}")
        return self

    def resolved(self) -> TrainJobConfig:
        """Local paths absolute: Ray Train's workers run in another directory."""
        return absolute_paths(self, *self.MODEL_PATHS)

    @property
    def worker_batch(self) -> int:
        return self.train.batch_size // (self.scaling.workers * self.train.grad_accumulation)


@dataclass
class Stage:
    """What one training job trains, built on a worker by the job's ``make_stage``."""

    model: Any
    """The trainable module (``save_pretrained`` / ``from_pretrained``), on the worker's device."""
    step: Callable[[Any, dict, Any], dict]
    """``step(model, batch, generator) -> {"loss": tensor, ...}``: the forward pass and its losses."""
    sample_grid: Callable[[Any], np.ndarray]
    """``sample_grid(unwrapped_model) -> (H, W, 3) uint8``: generated samples for MLflow (rank 0)."""
    model_class: type
    """The class whose ``from_pretrained`` reloads a checkpoint's ``model/`` folder."""


# ----------------------------------------------------------------------------- workers


MakeStage = Callable[[TrainJobConfig, Any, Any], Stage]
"""``make_stage(cfg, device, dtype) -> Stage``: a training job's model and step, built on a worker."""


@dataclass(frozen=True)
class WorkerJob:
    """What every Ray Train worker is handed (``train_loop_config={"job": WorkerJob(...)}``, which
    Ray pickles): the typed job config, its MLflow run and the job's ``make_stage``."""

    cfg: TrainJobConfig
    run_id: str
    tracking_uri: str
    make_stage: MakeStage


def train_loop(loop_config: dict) -> None:
    """Ray Train's entry on each worker."""
    train_worker(loop_config["job"])


def train_worker(job: WorkerJob) -> None:
    """One Ray Train worker: build the stage, restore, train with gradient accumulation,
    report checkpoints; rank 0 logs to MLflow."""
    import ray.train
    import ray.train.torch
    import torch
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    from handdiff.training.checkpoints import TrainingState, load_checkpoint

    cfg = job.cfg
    t = cfg.train
    rank = ray.train.get_context().get_world_rank()
    device = ray.train.torch.get_device()
    torch.manual_seed(t.seed + rank)
    generator = torch.Generator().manual_seed(t.seed + 1000 * rank)
    use_bf16 = t.mixed_precision == "bf16" and device.type == "cuda"
    stage = job.make_stage(cfg, device, torch.bfloat16 if use_bf16 else torch.float32)
    model = stage.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, betas=t.adam_betas, weight_decay=t.weight_decay)
    lr_scheduler = get_scheduler(t.lr_schedule, optimizer, num_warmup_steps=t.warmup_steps, num_training_steps=t.steps)
    ema = EMAModel(model.parameters(), decay=t.ema_decay) if t.ema_decay else None

    state = TrainingState(extra={"run_id": job.run_id})
    restored = ray.train.get_checkpoint()
    if restored is not None:
        # each worker reads its own copy: with ``as_directory`` the workers of one node share one
        # download, which the first to finish deletes while another may still be reading it
        with tempfile.TemporaryDirectory() as directory:
            state = load_checkpoint(restored.to_directory(directory), model, optimizer, lr_scheduler, ema, model_class=stage.model_class)
        log.info("rank %d: resumed at step %d", rank, state.step)
    model = ray.train.torch.prepare_model(model, parallel_strategy="ddp")
    unwrapped = model.module if hasattr(model, "module") else model

    tracker = RankZeroTracker(job, stage, unwrapped) if rank == 0 else None
    if tracker and restored is not None:
        mlflow.log_metric("resumed_from_step", state.step, step=state.step)
    shard = ray.train.get_dataset_shard("train")
    while state.step < t.steps:
        state.epoch += 1
        batches = shard.iter_batches(
            batch_size=cfg.worker_batch, batch_format="numpy", drop_last=True, local_shuffle_buffer_size=cfg.data.shuffle_buffer or None
        )
        pending: list[dict] = []
        for batch in batches:
            pending.append(batch)
            if len(pending) < t.grad_accumulation:
                continue
            started = time.perf_counter()
            parts: dict[str, float] = {}
            for i, micro_batch in enumerate(pending):
                last = i == len(pending) - 1
                with model.no_sync() if not last and hasattr(model, "no_sync") else contextlib.nullcontext():
                    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
                        losses = stage.step(model, micro_batch, generator)
                    (losses["loss"] / t.grad_accumulation).backward()
                for k, v in losses.items():
                    parts[k] = parts.get(k, 0.0) + v.item() / t.grad_accumulation
            pending = []
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.step(unwrapped.parameters())
            state.step += 1
            if tracker:
                tracker.step(
                    state.step,
                    parts,
                    float(grad_norm),
                    lr_scheduler.get_last_lr()[0],
                    t.batch_size / (time.perf_counter() - started),
                    state.epoch,
                )
            if state.step % cfg.checkpoint.every_steps == 0 or state.step == t.steps:
                _report(rank, state, parts, unwrapped, optimizer, lr_scheduler, ema)
            if state.step >= t.steps:
                break
    if tracker:
        tracker.close()


def _report(rank: int, state, parts: dict, model, optimizer, lr_scheduler, ema) -> None:
    """Every worker reports (Ray Train's barrier); rank 0 attaches the checkpoint."""
    import ray.train

    from handdiff.training.checkpoints import save_checkpoint

    metrics = {"step": state.step, "epoch": state.epoch, **parts}
    if rank != 0:
        ray.train.report(metrics, checkpoint=None)
        return
    with tempfile.TemporaryDirectory() as directory:
        save_checkpoint(directory, model, optimizer, lr_scheduler, state, ema)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory), checkpoint_dir_name=f"step_{state.step:08d}")


class RankZeroTracker:
    """Rank 0's MLflow logging: metrics every ``logging.every_steps``, sample grids every ``sample_every_steps``."""

    def __init__(self, job: WorkerJob, stage: Stage, model):
        self.cfg, self.stage, self.model = job.cfg, stage, model
        mlflow.set_tracking_uri(job.tracking_uri)
        self.run = mlflow.start_run(run_id=job.run_id)

    def step(self, step: int, parts: dict, grad_norm: float, lr: float, samples_per_second: float, epoch: int) -> None:
        if step % self.cfg.logging.every_steps == 0 or step == 1:
            mlflow.log_metrics(
                {**parts, "grad_norm": grad_norm, "lr": lr, "samples_per_second": samples_per_second, "epoch": epoch}, step=step
            )
        if step % self.cfg.logging.sample_every_steps == 0 or step == self.cfg.train.steps:
            mlflow.log_image(self.stage.sample_grid(self.model), f"samples/step_{step:08d}.png")

    def close(self) -> None:
        mlflow.end_run()


def validation_rows(cfg: TrainJobConfig, schema) -> list[dict]:
    """The first ``data.validation_rows`` rows of the set, whose conditions the sample grids draw."""
    from handdiff.data.parts import read_parts

    return read_parts(f"{cfg.data.path}/records", schema=schema).slice(0, cfg.data.validation_rows).to_pylist()


# ------------------------------------------------------------------------------ driver


def training_dataset(cfg: TrainJobConfig, batch_fn: Callable, built_by: str, **batch_options):
    """The training set's parts as a Ray Dataset of numpy batches made by ``batch_fn`` (data
    tasks on CPUs: decode, augment, drop captions), block order shuffled."""
    from handdiff.data.parts import part_uris
    from pipelines.ray_stages import files_dataset, map_tasks

    parts = part_uris(f"{cfg.data.path}/records")
    if not parts:
        raise FileNotFoundError(f"data.path: no training rows under {cfg.data.path}/records: run {built_by} first")
    return map_tasks(files_dataset(parts, cfg.data.tasks).randomize_block_order(), batch_fn, cfg.data.tasks, **batch_options)


def absolute_paths(cfg: TrainJobConfig, *model_fields: str) -> TrainJobConfig:
    """A copy whose local paths are absolute: Ray Train workers run in another directory.
    ``model_fields`` are dotted ``cfg.model`` attributes that may name local folders."""
    cfg = cfg.model_copy(deep=True)
    cfg.data.path, cfg.checkpoint.storage_path = storage.absolute(cfg.data.path), storage.absolute(cfg.checkpoint.storage_path)
    for name in model_fields:
        value = getattr(cfg.model, name)
        if value and storage.is_local(value) and Path(value).exists():
            setattr(cfg.model, name, storage.absolute(value))
    return cfg


def fit(
    cfg: TrainJobConfig, make_stage: MakeStage, dataset, export: Callable[[Any, str], None], log_model: Callable[[str], Any]
) -> tuple[Any, str, str]:
    """Train ``make_stage``'s model on a ``TorchTrainer`` in the job's MLflow run (continued when its name
    exists), then ``export(checkpoint, local_dir)`` the final model, ``log_model(local_dir)`` it
    (its registered version described by run, step and loss) and copy it to ``<checkpoint
    folder>/final_model`` (``checkpoint_folder``); a rerun that trained no new step leaves all
    three as they are (no new version). Returns (result, run id, final URI)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    fs, path = storage.arrow_filesystem(cfg.checkpoint.storage_path)
    if storage.is_local(cfg.checkpoint.storage_path):
        Path(path).mkdir(parents=True, exist_ok=True)
    with job_run(cfg) as active:
        checkpoints = checkpoint_folder(cfg, active.info.run_id)
        final = storage.join(checkpoints, "final_model")
        s = cfg.scaling
        trainer = TorchTrainer(
            train_loop,
            train_loop_config={"job": WorkerJob(cfg, active.info.run_id, mlflow.get_tracking_uri(), make_stage)},
            scaling_config=ScalingConfig(
                num_workers=s.workers,
                use_gpu=s.use_gpu,
                resources_per_worker={"CPU": s.cpus_per_worker, **({"GPU": 1} if s.use_gpu else {})},
            ),
            run_config=RunConfig(
                name=posixpath.basename(checkpoints),
                storage_path=path,
                storage_filesystem=fs,
                checkpoint_config=CheckpointConfig(num_to_keep=cfg.checkpoint.num_to_keep),
                failure_config=FailureConfig(max_failures=cfg.checkpoint.max_failures),
            ),
            datasets={"train": dataset},
        )
        route_ray_logs()  # Ray Train's loggers exist now
        with waits.WaitReporter(
            cfg.tracking.run_name or "train", waits.REPORT_WAITS_AFTER_S, waits.REPORT_WAITS_AFTER_S, while_pending=True
        ):
            result = trainer.fit()  # its workers' placement group waits silently where the cluster lacks their CPUs/GPUs
        if result.checkpoint is None:
            raise RuntimeError("training ended without a checkpoint")
        name = posixpath.basename(result.checkpoint.path.rstrip("/"))  # step_<8 digits>, as _report names it
        step = int(name[len("step_") :]) if name.startswith("step_") and name[len("step_") :].isdigit() else None
        if step is not None and mlflow.get_run(active.info.run_id).data.tags.get("final_model_step") == str(step) and storage.exists(final):
            # a rerun that trained no new step: the final model and its registered version stand
            log.info("no step past %d: the final model and its registered version are those of step %d", step, step)
        else:
            with tempfile.TemporaryDirectory() as directory:
                export(result.checkpoint, directory)
                info = log_model(directory)
                from handdiff.models.loading import copy_tree

                copy_tree(directory, final)
            if cfg.registered_model and info is not None and info.registered_model_version:
                loss = (result.metrics or {}).get("loss")
                MlflowClient().update_model_version(
                    cfg.registered_model,
                    info.registered_model_version,
                    description=(
                        f"{cfg.tracking.run_name} at step {step}"
                        + (f", loss {loss:.4f}" if loss is not None else "")
                        + f" (run {active.info.run_id})"
                    ),
                )
            mlflow.set_tags({"final_model": final, "final_model_step": step})
    return result, active.info.run_id, final


def checkpoint_folder(cfg: TrainJobConfig, run_id: str) -> str:
    """Where this MLflow run keeps its Ray Train checkpoints (its ``checkpoints`` tag, set on the
    run's first start): ``<storage_path>/<run_name>``, or ``<run_name>-<run id>`` when that folder
    belongs to another run (``tracking.resume=false`` under a used name) so nothing resumes from it."""
    tags = mlflow.get_run(run_id).data.tags
    if "checkpoints" in tags:
        return tags["checkpoints"]
    folder = storage.join(cfg.checkpoint.storage_path, cfg.tracking.run_name)
    if storage.exists(folder):
        folder = f"{folder}-{run_id[:8]}"
    mlflow.set_tag("checkpoints", folder)
    return folder


def final_weights(checkpoint, model_class: type):
    """The trained model of a checkpoint: its EMA weights when EMA was on, else its weights."""
    with checkpoint.as_directory() as saved:
        return model_class.from_pretrained(Path(saved) / ("ema" if (Path(saved) / "ema").exists() else "model"))


def print_result(what: str, result, run_id: str, cfg: TrainJobConfig, final: str) -> None:
    print(f"\n{what} trained to step {result.metrics.get('step')} (MLflow run {run_id}, experiment {cfg.experiment!r})")
    print(f"  loss {result.metrics.get('loss', float('nan')):.4f}; checkpoints under {posixpath.dirname(final)}")
    print(f"  final model {final}" + (f", registered as {cfg.registered_model!r}" if cfg.registered_model else ""))
