"""Train the stage-1 hand generator on Ray Train (TorchTrainer, DDP): an SD 1.5 UNet with
11 extra condition channels and a mask head, on a hand-crop set (``build-hand-crops``).

Workers stream their shard of the set through a Ray Data stage that draws one crop per
image, augments colours and drops captions; each step encodes with the frozen VAE and
text encoder (or reads precomputed encodings), builds the condition on the device and
optimises ``L_LDM + 0.5 * mask MSE`` with AdamW. Rank 0 logs loss parts, lr and samples/s
to MLflow, and a grid of generated hands and masks for fixed validation crops.

Checkpoints go to ``checkpoint.storage_path`` (local or s3://) every ``every_steps``.
Starting the same ``tracking.run_name`` again continues from the latest checkpoint at
its step, in the same MLflow run; the epoch that was in progress restarts from its
beginning (the data position is not checkpointed). A killed worker restarts the worker
group from the latest checkpoint Ray Train has committed (``max_failures``; a checkpoint
being uploaded when the worker dies may not be committed yet). At the end, the final model (the EMA
weights when EMA is on) is saved as a complete hand-generation pipeline, logged to MLflow
and registered.

    handdiff train-hand --config pipelines/configs/train_hand_demo.yaml
    ray job submit --working-dir . -- python -m pipelines.train_hand --config pipelines/configs/train_hand.yaml
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import mlflow
import numpy as np
from pydantic import Field, model_validator

from handdiff import storage
from handdiff.config import StrictModel
from handdiff.data.hand_crops import HAND_CROP_SCHEMA
from handdiff.data.parts import part_uris, read_parts
from handdiff.provenance import code_version
from handdiff.tracking import tracked_run
from pipelines.job import JobConfig, TrackingConfig, run_job
from pipelines.ray_stages import TaskResources, files_dataset, map_tasks

log = logging.getLogger("handdiff.train_hand")


class DataSection(StrictModel):
    path: str
    """A hand-crop set: the output folder of build-hand-crops."""
    validation_crops: int = Field(4, ge=1)
    """Crops of the set (the first ones) whose conditions are drawn in the sample grids."""
    shuffle_buffer: int = Field(256, ge=0)
    tasks: TaskResources = TaskResources(batch_size=32, num_cpus=1, concurrency=4)


class ModelSection(StrictModel):
    base: str
    """SD 1.5: a path, s3:// prefix or hub id (stable-diffusion-v1-5/stable-diffusion-v1-5)."""
    conv_in_init: Literal["random", "zero"] = "random"
    """The 11 new input channels' weights: random (the paper) or zero."""
    mask_head_source: str | None = None
    """UNet module whose input feeds the mask head (default: the last upsampler, 1/16 resolution)."""
    mask_head_channels: list[int] | None = None


class Augment(StrictModel):
    p: float = 0.8
    rgb_shift: float = 20.0
    brightness: float = 0.2
    contrast: float = 0.2


class TrainSection(StrictModel):
    steps: int = Field(30_000, ge=1)
    """Optimizer steps in all (the paper: 30,000 = 5 epochs of 193,300 at batch 32)."""
    batch_size: int = Field(32, ge=1)
    """Global batch: per-worker batch x workers x grad_accumulation."""
    grad_accumulation: int = Field(1, ge=1)
    lr: float = 1e-5
    lr_schedule: str = "constant_with_warmup"
    """Any diffusers.optimization schedule name."""
    warmup_steps: int = 500
    weight_decay: float = 1e-2
    adam_betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float = 1.0
    mixed_precision: Literal["no", "bf16"] = "bf16"
    """bf16 autocast on GPUs; ignored on CPU."""
    gradient_checkpointing: bool = True
    ema_decay: float | None = None
    mask_weight: float = 0.5
    mask_dropout: float = 0.5
    caption_dropout: float = 0.1
    """Our choice (the paper does not say): empty captions for classifier-free guidance."""
    heatmap_sigma: float | None = None
    """Pixels at crop resolution; default crop size / 64 (8 px at 512)."""
    augment: Augment | None = Augment()
    seed: int = 0


class ScalingSection(StrictModel):
    workers: int = Field(2, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = 1.0


class CheckpointSection(StrictModel):
    storage_path: str
    """Where Ray Train keeps runs and checkpoints: a local path or s3:// prefix."""
    every_steps: int = Field(500, ge=1)
    num_to_keep: int = Field(3, ge=1)
    max_failures: int = 3
    """Worker-group restarts from the latest checkpoint before the run fails."""


class LoggingSection(StrictModel):
    every_steps: int = Field(10, ge=1)
    sample_every_steps: int = Field(500, ge=1)
    sample_inference_steps: int = 25
    guidance_scale: float = 7.5


class Config(JobConfig):
    job: Literal["train-hand"] = "train-hand"
    tracking: TrackingConfig = TrackingConfig(run_name="train-hand")
    data: DataSection
    model: ModelSection
    train: TrainSection = TrainSection()
    scaling: ScalingSection = ScalingSection()
    checkpoint: CheckpointSection
    logging: LoggingSection = LoggingSection()
    registered_model: str | None = "handdiff-hand-generator"
    """Register the final model under this name in MLflow (None: log it only)."""

    @model_validator(mode="after")
    def _batch_divides(self) -> Config:
        per = self.scaling.workers * self.train.grad_accumulation
        if self.train.batch_size % per:
            raise ValueError(f"train.batch_size {self.train.batch_size} is not a multiple of workers x grad_accumulation = {per}")
        return self

    @property
    def worker_batch(self) -> int:
        return self.train.batch_size // (self.scaling.workers * self.train.grad_accumulation)


def demo_config(workdir: str, tracking: TrackingConfig | None = None) -> Config:
    """Stage-1 training of the embedded default: the demo's crops, the tiny zoo, 2 CPU workers,
    a few steps (pipelines/configs/train_hand_demo.yaml)."""
    return Config(
        ray={"num_cpus": 8},
        tracking=tracking or TrackingConfig(run_name="train-hand-demo"),
        data={"path": storage.join(workdir, "hand_crops"), "validation_crops": 2, "shuffle_buffer": 16,
              "tasks": {"batch_size": 8, "num_cpus": 0.5, "concurrency": 2}},  # fmt: skip
        model={"base": storage.join(workdir, "zoo", "sd15")},
        train={"steps": 8, "batch_size": 4, "lr": 1e-4, "warmup_steps": 2, "mixed_precision": "no", "gradient_checkpointing": False},
        scaling={"workers": 2},
        checkpoint={"storage_path": storage.join(workdir, "train_hand"), "every_steps": 4},
        logging={"every_steps": 1, "sample_every_steps": 8, "sample_inference_steps": 4},
        registered_model="handdiff-hand-generator-demo",
    )


# ----------------------------------------------------------------------------- workers


def train_loop(config: dict) -> None:
    """One Ray Train worker. Ranks, devices, DDP and rank-0 side effects live here only."""
    import ray.train
    import ray.train.torch
    import torch
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    from handdiff.models.hand_generator import HandGenerator, build_hand_generator
    from handdiff.models.loading import load_sd_pipeline
    from handdiff.training.checkpoints import TrainingState, load_checkpoint
    from handdiff.training.frozen import FrozenParts
    from handdiff.training.hand_step import StepSettings, hand_training_step

    cfg = Config.model_validate(config["cfg"])
    t = cfg.train
    rank = ray.train.get_context().get_world_rank()
    device = ray.train.torch.get_device()
    torch.manual_seed(t.seed + rank)
    generator = torch.Generator().manual_seed(t.seed + 1000 * rank)

    sd = load_sd_pipeline(cfg.model.base)
    model = build_hand_generator(sd.unet, init=cfg.model.conv_in_init, mask_head_source=cfg.model.mask_head_source,
                                 mask_head_channels=cfg.model.mask_head_channels)  # fmt: skip
    if t.gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
    use_bf16 = t.mixed_precision == "bf16" and device.type == "cuda"
    frozen_dtype = torch.bfloat16 if use_bf16 else torch.float32
    for part in (sd.vae, sd.text_encoder):
        part.requires_grad_(False).eval().to(device, frozen_dtype)
    frozen = FrozenParts(sd.vae, sd.text_encoder, sd.tokenizer, DDPMScheduler.from_config(sd.scheduler.config))
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, betas=t.adam_betas, weight_decay=t.weight_decay)
    lr_scheduler = get_scheduler(t.lr_schedule, optimizer, num_warmup_steps=t.warmup_steps, num_training_steps=t.steps)
    ema = EMAModel(model.parameters(), decay=t.ema_decay) if t.ema_decay else None

    state = TrainingState(extra={"run_id": config["run_id"]})
    restored = ray.train.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as directory:
            state = load_checkpoint(directory, model, optimizer, lr_scheduler, ema, model_class=HandGenerator)
        log.info("rank %d: resumed at step %d", rank, state.step)
    model = ray.train.torch.prepare_model(model, parallel_strategy="ddp")
    unwrapped = model.module if hasattr(model, "module") else model
    settings = StepSettings(sigma=config["sigma"], mask_dropout=t.mask_dropout, mask_weight=t.mask_weight)

    tracker = _RankZeroTracker(cfg, config, sd, unwrapped, device) if rank == 0 else None
    if tracker and restored is not None:
        mlflow.log_metric("resumed_from_step", state.step, step=state.step)
    shard = ray.train.get_dataset_shard("train")
    micro = cfg.worker_batch
    while state.step < t.steps:
        state.epoch += 1
        batches = shard.iter_batches(batch_size=micro, batch_format="numpy", drop_last=True, local_shuffle_buffer_size=cfg.data.shuffle_buffer or None)
        pending: list[dict] = []
        for batch in batches:
            pending.append(batch)
            if len(pending) < t.grad_accumulation:
                continue
            started = time.perf_counter()
            parts = {}
            for i, micro_batch in enumerate(pending):
                last = i == len(pending) - 1
                with model.no_sync() if not last and hasattr(model, "no_sync") else contextlib.nullcontext():
                    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
                        losses = hand_training_step(model, frozen, micro_batch, settings, device, frozen_dtype, generator)
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
                tracker.step(state.step, parts, float(grad_norm), lr_scheduler.get_last_lr()[0], cfg.train.batch_size / (time.perf_counter() - started), state.epoch)
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


class _RankZeroTracker:
    """Rank 0's MLflow logging: metrics every ``logging.every_steps``, sample grids every ``sample_every_steps``."""

    def __init__(self, cfg: Config, config: dict, sd, model, device):
        from handdiff.models.hand_pipeline import HandGenerationPipeline

        self.cfg = cfg
        mlflow.set_tracking_uri(config["tracking_uri"])
        self.run = mlflow.start_run(run_id=config["run_id"])
        self.pipeline = HandGenerationPipeline.from_parts(sd, model)
        self.validation = read_parts(f"{cfg.data.path}/records", schema=HAND_CROP_SCHEMA).slice(0, cfg.data.validation_crops).to_pylist()
        self.sigma, self.device = config["sigma"], device

    def step(self, step: int, parts: dict, grad_norm: float, lr: float, samples_per_second: float, epoch: int) -> None:
        if step % self.cfg.logging.every_steps == 0 or step == 1:
            mlflow.log_metrics({**parts, "grad_norm": grad_norm, "lr": lr, "samples_per_second": samples_per_second, "epoch": epoch}, step=step)
        if step % self.cfg.logging.sample_every_steps == 0 or step == self.cfg.train.steps:
            mlflow.log_image(sample_grid(self.pipeline, self.validation, self.sigma, self.cfg.logging), f"samples/step_{step:08d}.png")

    def close(self) -> None:
        mlflow.end_run()


def sample_grid(pipeline, rows: list[dict], sigma: float, logging_cfg: LoggingSection) -> np.ndarray:
    """Per validation crop: its condition (keypoints on the real crop), the generated hands,
    the predicted mask, the real mask; one row each. (H, W, 3) uint8."""
    import torch

    from handdiff.data.images import decode_image
    from handdiff.data.rle import decode_rle
    from handdiff.models.conditioning import hand_condition
    from handdiff.viz import contact_sheet, draw_keypoints

    crops = [row["crops"][0] for row in rows]
    keypoints = torch.as_tensor(np.stack([np.asarray(c["keypoints"], np.float32).reshape(42, 3) for c in crops]))
    masks = torch.as_tensor(np.stack([decode_rle(c["mask"]) for c in crops]).astype(np.float32))
    out = pipeline([r["caption"] for r in rows], hand_condition(keypoints, masks, sigma), logging_cfg.sample_inference_steps,
                   logging_cfg.guidance_scale, torch.Generator().manual_seed(0))  # fmt: skip
    tiles = []
    for i, crop in enumerate(crops):
        body = np.zeros((133, 3), np.float32)
        body[91:133] = keypoints[i].numpy()
        real = decode_image(crop["image"])
        generated = (out.images[i].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)
        predicted = np.repeat((out.masks[i, 0].cpu().numpy() * 255).astype(np.uint8)[..., None], 3, axis=2)
        truth = np.repeat((masks[i].numpy() * 255).astype(np.uint8)[..., None], 3, axis=2)
        tiles += [draw_keypoints(real, body), generated, predicted, truth]
    return contact_sheet(tiles, columns=4, cell=min(256, real.shape[0]))


# ------------------------------------------------------------------------------ driver


def training_dataset(cfg: Config):
    """The hand-crop set as a Ray Dataset of training batches (decoded, augmented, captions dropped)."""
    from handdiff.training.hand_batches import hand_crop_batch

    parts = part_uris(f"{cfg.data.path}/records")
    if not parts:
        raise FileNotFoundError(f"no hand crops under {cfg.data.path}/records: run build-hand-crops first")
    ds = files_dataset(parts, cfg.data.tasks).randomize_block_order()
    augment = cfg.train.augment.model_dump() if cfg.train.augment else None
    return map_tasks(ds, hand_crop_batch, cfg.data.tasks, caption_dropout=cfg.train.caption_dropout, augment=augment)


def heatmap_sigma(cfg: Config) -> float:
    if cfg.train.heatmap_sigma is not None:
        return cfg.train.heatmap_sigma
    size = read_parts(f"{cfg.data.path}/records", ["crop_size"], HAND_CROP_SCHEMA).column("crop_size")[0].as_py()
    return size / 64


def export_final_model(cfg: Config, checkpoint, directory: str) -> None:
    """The final pipeline (SD 1.5's frozen parts + the trained generator, EMA weights if any) into ``directory``."""
    from handdiff.models.hand_generator import HandGenerator
    from handdiff.models.hand_pipeline import HandGenerationPipeline
    from handdiff.models.loading import load_sd_pipeline

    with checkpoint.as_directory() as saved:
        weights = Path(saved) / ("ema" if (Path(saved) / "ema").exists() else "model")
        generator = HandGenerator.from_pretrained(weights)
    HandGenerationPipeline.from_parts(load_sd_pipeline(cfg.model.base), generator).save_pretrained(directory)


def log_final_model(directory: str, name: str | None) -> None:
    """Log the pipeline folder as an MLflow pyfunc model (code, not a pickle) and register it."""
    import mlflow.pyfunc

    from handdiff.models import hand_pyfunc

    mlflow.pyfunc.log_model(
        name="hand_generator", python_model=hand_pyfunc.__file__, artifacts={"pipeline": directory},
        pip_requirements=[f"handdiff=={code_version().split('+')[0]}"], registered_model_name=name,
    )  # fmt: skip


def run(cfg: Config) -> int:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    cfg = cfg.model_copy(deep=True)  # Ray Train workers run elsewhere: local paths must be absolute
    cfg.data.path, cfg.checkpoint.storage_path = storage.absolute(cfg.data.path), storage.absolute(cfg.checkpoint.storage_path)
    if storage.is_local(cfg.model.base) and Path(cfg.model.base).exists():
        cfg.model.base = storage.absolute(cfg.model.base)
    fs, path = storage.arrow_filesystem(cfg.checkpoint.storage_path)
    if storage.is_local(cfg.checkpoint.storage_path):
        Path(path).mkdir(parents=True, exist_ok=True)
    with tracked_run(cfg.experiment, cfg.tracking.run_name, cfg.model_dump(mode="json"), tracking_uri=cfg.tracking.tracking_uri,
                     resume=cfg.tracking.resume, tags={"code_version": code_version()}) as active:  # fmt: skip
        trainer = TorchTrainer(
            train_loop,
            train_loop_config={"cfg": cfg.model_dump(mode="json"), "run_id": active.info.run_id,
                               "tracking_uri": mlflow.get_tracking_uri(), "sigma": heatmap_sigma(cfg)},  # fmt: skip
            scaling_config=ScalingConfig(num_workers=cfg.scaling.workers, use_gpu=cfg.scaling.use_gpu,
                                         resources_per_worker={"CPU": cfg.scaling.cpus_per_worker, **({"GPU": 1} if cfg.scaling.use_gpu else {})}),  # fmt: skip
            run_config=RunConfig(
                name=cfg.tracking.run_name, storage_path=path, storage_filesystem=fs,
                checkpoint_config=CheckpointConfig(num_to_keep=cfg.checkpoint.num_to_keep),
                failure_config=FailureConfig(max_failures=cfg.checkpoint.max_failures),
            ),  # fmt: skip
            datasets={"train": training_dataset(cfg)},
        )
        result = trainer.fit()
        if result.checkpoint is None:
            raise RuntimeError("training ended without a checkpoint")
        final = storage.join(cfg.checkpoint.storage_path, cfg.tracking.run_name, "final_model")
        with tempfile.TemporaryDirectory() as directory:
            export_final_model(cfg, result.checkpoint, directory)
            log_final_model(directory, cfg.registered_model)
            if storage.is_local(final):
                import shutil

                shutil.copytree(directory, storage.local_path(final), dirs_exist_ok=True)
            else:
                from handdiff.models.loading import copy_tree

                copy_tree(directory, final)
        mlflow.log_param("final_model", final)
    print(f"\nhand generator trained to step {result.metrics.get('step')} (MLflow run {active.info.run_id}, experiment {cfg.experiment!r})")
    print(f"  loss {result.metrics.get('loss', float('nan')):.4f}; checkpoints under {storage.join(cfg.checkpoint.storage_path, cfg.tracking.run_name)}")
    print(f"  final model {final}" + (f", registered as {cfg.registered_model!r}" if cfg.registered_model else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="train-hand", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
