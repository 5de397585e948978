"""Train the stage-1 hand generator on Ray Train (TorchTrainer, DDP): an SD 1.5 UNet with
11 extra condition channels (15 input channels in all) and a mask head, on a hand-crop set
(``build-hand-crops``).

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

import logging
import sys
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from handdiff import storage
from handdiff.config import ConfigError, StrictModel
from handdiff.data.hand_crops import HAND_CROP_SCHEMA
from handdiff.data.parts import part_uris, read_part
from handdiff.data.set_settings import read_set_settings
from handdiff.tracking import log_pipeline_model
from pipelines.job import TrackingConfig, run_job
from pipelines.training import (
    LoggingSection,
    Stage,
    TrainJobConfig,
    TrainSection,
    final_weights,
    fit,
    print_result,
    training_dataset,
    validation_rows,
)

log = logging.getLogger("handdiff.train_hand")


class ModelSection(StrictModel):
    base: str
    """SD 1.5: a path, s3:// prefix or hub id (stable-diffusion-v1-5/stable-diffusion-v1-5)."""
    conv_in_init: Literal["random", "zero"] = "random"
    """The 11 new input channels' weights: random (the paper) or zero."""
    mask_head_source: str | None = None
    """UNet module whose input feeds the mask head (default: the last upsampler, 1/16 resolution)."""
    mask_head_channels: list[int] | None = None


class Augment(StrictModel):
    p: float = Field(0.8, ge=0, le=1)
    rgb_shift: float = Field(20.0, ge=0)
    brightness: float = Field(0.2, ge=0)
    contrast: float = Field(0.2, ge=0)


class HandTrainSection(TrainSection):
    steps: int = Field(30_000, ge=1)
    """Optimizer steps in all (the paper: 30,000 = 5 epochs of 193,300 at batch 32)."""
    mask_weight: float = Field(0.5, ge=0)
    mask_dropout: float = Field(0.5, ge=0, le=1)
    heatmap_sigma: float | None = Field(None, gt=0)
    """Pixels at crop resolution; default crop size / 64 (8 px at 512). Saved in the model's
    config with the crop set's size, margin and hand rule (its ``settings.json``): inference uses those."""
    augment: Augment | None = Augment()
    """The paper's colour augmentation; needs the pixels, so a crop set with precomputed
    latents is refused unless this is null."""


class Config(TrainJobConfig):
    job: Literal["train-hand"] = "train-hand"
    tracking: TrackingConfig = TrackingConfig(run_name="train-hand")
    model: ModelSection
    train: HandTrainSection = HandTrainSection()
    MODEL_PATHS = ("base",)
    registered_model: str | None = "handdiff-hand-generator"

    def preflight(self) -> None:
        """Refuse a crop set that does not record its settings (the model must carry them), and
        one with precomputed latents while colour augmentation is on: the augmentation would
        silently not happen."""
        if storage.exists(f"{self.data.path}/records"):
            try:
                crop_settings(self)
            except (FileNotFoundError, ValueError) as err:
                raise ConfigError(f"data.path: {err}") from None
        parts = part_uris(f"{self.data.path}/records") if storage.exists(f"{self.data.path}/records") else []
        if self.train.augment is None or not parts:
            return
        crops = read_part(parts[0], ["crops"]).column("crops").to_pylist()
        if any(c["latents"] is not None for row in crops for c in row):
            raise ConfigError(
                f"train.augment is on, but the crop set {self.data.path} holds precomputed latents (fixed pixels), "
                "which cannot be colour-augmented: set train.augment=null, or build the set without precompute"
            )


# ----------------------------------------------------------------------------- workers


def make_stage(cfg: Config, device, dtype) -> Stage:
    """The hand generator (SD 1.5's UNet grown, with a mask head) and its frozen parts, on ``device``."""
    import torch
    from diffusers import DDPMScheduler

    from handdiff.models.hand_generator import HandGenerator, build_hand_generator
    from handdiff.models.hand_pipeline import HandGenerationPipeline
    from handdiff.models.loading import load_sd_pipeline
    from handdiff.training.frozen import FrozenParts
    from handdiff.training.hand_step import StepSettings, hand_training_step

    t = cfg.train
    sd = load_sd_pipeline(cfg.model.base)
    model = build_hand_generator(
        sd.unet,
        init=cfg.model.conv_in_init,
        mask_head_source=cfg.model.mask_head_source,
        mask_head_channels=cfg.model.mask_head_channels,
        generator=torch.Generator().manual_seed(t.seed),
        **crop_settings(cfg),
    )
    if t.gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
    for part in (sd.vae, sd.text_encoder):
        part.requires_grad_(False).eval().to(device, dtype)
    model.to(device)
    frozen = FrozenParts(sd.vae, sd.text_encoder, sd.tokenizer, DDPMScheduler.from_config(sd.scheduler.config))
    sigma = model.config.heatmap_sigma
    settings = StepSettings(sigma=sigma, mask_dropout=t.mask_dropout, mask_weight=t.mask_weight)

    def sample(unwrapped) -> np.ndarray:
        return sample_grid(HandGenerationPipeline.from_parts(sd, unwrapped), validation_rows(cfg, HAND_CROP_SCHEMA), sigma, cfg.logging)

    return Stage(model, lambda m, batch, g: hand_training_step(m, frozen, batch, settings, device, dtype, g), sample, HandGenerator)


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
    out = pipeline(
        [r["caption"] for r in rows],
        hand_condition(keypoints, masks, sigma),
        logging_cfg.sample_inference_steps,
        logging_cfg.guidance_scale,
        torch.Generator().manual_seed(0),
    )
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


def crop_settings(cfg: Config) -> dict:
    """What the model records of its crops (``HandGenerator``'s config): the crop set's size,
    margin and hand rule, from the set's ``settings.json``, and the heatmap sigma."""
    made = read_set_settings(cfg.data.path, ("size", "margin", "min_hand_points"))
    return {
        "crop_size": made["size"],
        "crop_margin": made["margin"],
        "min_hand_points": made["min_hand_points"],
        "heatmap_sigma": cfg.train.heatmap_sigma or made["size"] / 64,
    }


def export_final_model(cfg: Config, checkpoint, directory: str) -> None:
    """The final pipeline (SD 1.5's frozen parts + the trained generator, EMA weights if any) into ``directory``."""
    from handdiff.models.hand_generator import HandGenerator
    from handdiff.models.hand_pipeline import HandGenerationPipeline
    from handdiff.models.loading import load_sd_pipeline

    HandGenerationPipeline.from_parts(load_sd_pipeline(cfg.model.base), final_weights(checkpoint, HandGenerator)).save_pretrained(directory)


def run(cfg: Config) -> int:
    from handdiff.serving import hand_pyfunc

    cfg = cfg.resolved()
    from handdiff.training.hand_batches import hand_crop_batch

    augment = cfg.train.augment.model_dump() if cfg.train.augment else None
    dataset = training_dataset(cfg, hand_crop_batch, "build-hand-crops", caption_dropout=cfg.train.caption_dropout, augment=augment)
    result, run_id, final = fit(
        cfg,
        make_stage,
        dataset,
        export=lambda checkpoint, directory: export_final_model(cfg, checkpoint, directory),
        log_model=lambda directory: log_pipeline_model({"pipeline": directory}, "hand_generator", hand_pyfunc, cfg.registered_model),
    )
    print_result("hand generator", result, run_id, cfg, final)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="train-hand", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
