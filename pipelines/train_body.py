"""Train the stage-2 body ControlNet on Ray Train (TorchTrainer, DDP): the OpenPose ControlNet
with a fourth condition channel (the hand mask), steering a frozen SD 1.5 UNet to outpaint a
body around fixed hands, on an outpaint set (``build-outpaint-set``).

Workers stream their shard of the set through a Ray Data stage (decode, caption dropout);
each step encodes image and canvas with the frozen VAE (or reads precomputed latents),
blends the noisy latents with the canvas's under the hand mask (``x_t = m x_c + (1 - m)
x_t``, clean ``x_c`` as the paper, or ``train.noised_canvas``) and optimises the epsilon MSE
outside the hands with AdamW. Rank 0 logs loss, lr, grad norm and samples/s to MLflow, and a
grid of skeleton | canvas | mask | outpainted body for fixed validation rows.

Checkpoints, resume by run name and worker-failure recovery work as for ``train-hand``
(``pipelines/training.py``). At the end the final ControlNet (EMA weights when EMA is on) is
saved as a complete outpainting pipeline, logged to MLflow as a pyfunc and registered.

    handdiff train-body --config pipelines/configs/train_body_demo.yaml
    ray job submit --working-dir . -- python -m pipelines.train_body --config pipelines/configs/train_body.yaml
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
from handdiff.data.outpaint import OUTPAINT_SCHEMA
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

log = logging.getLogger("handdiff.train_body")


class ModelSection(StrictModel):
    base: str
    """SD 1.5 (its UNet stays frozen): a path, s3:// prefix or hub id (stable-diffusion-v1-5/stable-diffusion-v1-5)."""
    controlnet: str
    """The OpenPose ControlNet to start from: a path, s3:// prefix or hub id. ControlNet 1.1's
    lllyasviel/control_v11p_sd15_openpose (our choice: the paper says only "the official
    Openpose-pretrained checkpoint"; 1.1 was trained on body + hand drawings like our skeletons,
    1.0's lllyasviel/sd-controlnet-openpose on bodies alone)."""


class BodyTrainSection(TrainSection):
    steps: int = Field(6_000, ge=1)
    """Optimizer steps in all (the paper: 6,000 = 5 epochs of 36,500 at batch 32)."""
    noised_canvas: bool = False
    """Blend the canvas latents noised to step t instead of clean (the paper: clean)."""


class Config(TrainJobConfig):
    job: Literal["train-body"] = "train-body"
    tracking: TrackingConfig = TrackingConfig(run_name="train-body")
    model: ModelSection
    train: BodyTrainSection = BodyTrainSection()
    MODEL_PATHS = ("base", "controlnet")
    registered_model: str | None = "handdiff-body-outpainter"

    def preflight(self) -> None:
        """Refuse an outpaint set that does not record its settings: the model must carry its fill."""
        if storage.exists(f"{self.data.path}/records"):
            try:
                outpaint_settings(self)
            except (FileNotFoundError, ValueError) as err:
                raise ConfigError(f"data.path: {err}") from None


# ----------------------------------------------------------------------------- workers


def make_stage(cfg: Config, device, dtype) -> Stage:
    """The grown ControlNet (trainable) and SD 1.5's frozen UNet, VAE and text encoder, on ``device``."""
    from diffusers import ControlNetModel, DDPMScheduler

    from handdiff.models.body_controlnet import grow_controlnet_condition
    from handdiff.models.body_pipeline import BodyOutpaintPipeline
    from handdiff.models.loading import load_controlnet, load_sd_pipeline
    from handdiff.training.body_step import BodyStepSettings, body_training_step
    from handdiff.training.frozen import FrozenParts

    sd = load_sd_pipeline(cfg.model.base)
    controlnet = grow_controlnet_condition(load_controlnet(cfg.model.controlnet))
    if cfg.train.gradient_checkpointing:
        controlnet.enable_gradient_checkpointing()
    for part in (sd.vae, sd.text_encoder, sd.unet):
        part.requires_grad_(False).eval().to(device, dtype)
    controlnet.to(device).train()
    frozen = FrozenParts(sd.vae, sd.text_encoder, sd.tokenizer, DDPMScheduler.from_config(sd.scheduler.config), sd.unet)
    settings = BodyStepSettings(noised_canvas=cfg.train.noised_canvas)

    def sample(unwrapped) -> np.ndarray:
        return sample_grid(BodyOutpaintPipeline.from_parts(sd, unwrapped), validation_rows(cfg, OUTPAINT_SCHEMA), cfg.logging)

    return Stage(controlnet, lambda m, batch, g: body_training_step(m, frozen, batch, settings, device, dtype, g), sample, ControlNetModel)


def sample_grid(pipeline, rows: list[dict], logging_cfg: LoggingSection) -> np.ndarray:
    """Per validation row: skeleton, canvas, hand mask, the outpainted body (the paper's two
    unmasked last steps included); one row each. (H, W, 3) uint8."""
    import torch

    from handdiff.data.images import decode_image
    from handdiff.data.rle import decode_rle
    from handdiff.viz import contact_sheet

    def tensor(images: list[np.ndarray]) -> torch.Tensor:
        return torch.as_tensor(np.stack(images)).permute(0, 3, 1, 2).float() / 255

    skeletons, canvases = [decode_image(r["skeleton"]) for r in rows], [decode_image(r["canvas"]) for r in rows]
    masks = [decode_rle(r["mask"]) for r in rows]
    was_training = pipeline.controlnet.training
    pipeline.controlnet.eval()
    out = pipeline(
        [r["caption"] for r in rows],
        tensor(skeletons),
        torch.as_tensor(np.stack(masks)[:, None].astype(np.float32)),
        canvas=tensor(canvases),
        num_inference_steps=logging_cfg.sample_inference_steps,
        guidance_scale=logging_cfg.guidance_scale,
        generator=torch.Generator().manual_seed(0),
        unmasked_last_steps=min(2, logging_cfg.sample_inference_steps - 1),
    )
    pipeline.controlnet.train(was_training)
    tiles = []
    for i in range(len(rows)):
        mask = np.repeat(masks[i][..., None].astype(np.uint8) * 255, 3, axis=2)
        tiles += [skeletons[i], canvases[i], mask, (out.images[i].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)]
    return contact_sheet(tiles, columns=4, cell=min(256, skeletons[0].shape[0]))


# ------------------------------------------------------------------------------ driver


def outpaint_settings(cfg: Config) -> dict:
    """What the outpaint set was made with (its ``settings.json``), as ``OutpaintSettings``' config."""
    made = read_set_settings(cfg.data.path, ("size", "margin", "fill"))
    return {"fill": made["fill"], "size": made["size"], "person_margin": made["margin"]}


def export_final_model(cfg: Config, checkpoint, directory: str) -> None:
    """The final pipeline (SD 1.5's frozen parts + the trained ControlNet, EMA weights if any, and
    the outpaint set's settings) into ``directory``."""
    from diffusers import ControlNetModel

    from handdiff.models.body_pipeline import BodyOutpaintPipeline, OutpaintSettings
    from handdiff.models.loading import load_sd_pipeline

    settings = OutpaintSettings(**outpaint_settings(cfg))
    BodyOutpaintPipeline.from_parts(load_sd_pipeline(cfg.model.base), final_weights(checkpoint, ControlNetModel), settings).save_pretrained(
        directory
    )


def run(cfg: Config) -> int:
    from handdiff.serving import body_pyfunc

    cfg = cfg.resolved()
    from handdiff.training.body_batches import outpaint_batch

    dataset = training_dataset(cfg, outpaint_batch, "build-outpaint-set", caption_dropout=cfg.train.caption_dropout)
    result, run_id, final = fit(
        cfg,
        make_stage,
        dataset,
        export=lambda checkpoint, directory: export_final_model(cfg, checkpoint, directory),
        log_model=lambda directory: log_pipeline_model({"pipeline": directory}, "body_outpainter", body_pyfunc, cfg.registered_model),
    )
    print_result("body ControlNet", result, run_id, cfg, final)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="train-body", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
