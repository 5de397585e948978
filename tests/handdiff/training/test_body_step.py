"""The stage-2 step on the tiny zoo: only the ControlNet trains, the loss falls, both input paths run."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch
from diffusers import DDPMScheduler

from handdiff.assets.tiny_zoo import model_locations
from handdiff.data.images import encode_image
from handdiff.data.outpaint import OUTPAINT_SCHEMA
from handdiff.data.rle import encode_rle
from handdiff.models.body_controlnet import grow_controlnet_condition
from handdiff.models.loading import load_controlnet, load_sd_pipeline
from handdiff.training.body_batches import outpaint_batch
from handdiff.training.body_step import BodyStepSettings, body_training_step
from handdiff.training.frozen import FrozenParts


def setup(zoo):
    sd = load_sd_pipeline(model_locations(zoo)["sd15"])
    sd.unet.requires_grad_(False)
    controlnet = grow_controlnet_condition(load_controlnet(model_locations(zoo)["controlnet"]))
    return controlnet, FrozenParts(sd.vae, sd.text_encoder, sd.tokenizer, DDPMScheduler.from_config(sd.scheduler.config), sd.unet)


def rows(n: int = 2, size: int = 64, encoded: bool = False) -> pa.Table:
    rng = np.random.default_rng(0)
    mask = np.zeros((size, size), bool)
    mask[16:32, 16:32] = True
    out = []
    for i in range(n):
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        canvas = np.where(mask[..., None], image, np.uint8(127))
        latent = rng.standard_normal((4, size // 8, size // 8)).astype(np.float16).tobytes() if encoded else None
        out.append(
            {
                "image_id": f"x/{i}",
                "dataset": "x",
                "split": "train",
                "caption": "a person",
                "image": encode_image(image),
                "canvas": encode_image(canvas, "PNG"),
                "mask": encode_rle(mask),
                "skeleton": encode_image(image // 4, "PNG"),
                "keypoints": [0.0] * 399,
                "box": [0, 0, size],
                "size": size,
                "latents": latent,
                "canvas_latents": latent,
                "text_embedding": np.zeros((77, 32), np.float16).tobytes() if encoded else None,
                "code_version": "t",
            }
        )
    return pa.Table.from_pylist(out, schema=OUTPAINT_SCHEMA)


def test_only_the_controlnet_learns_and_the_loss_falls(tiny_zoo):
    controlnet, frozen = setup(tiny_zoo)
    data = outpaint_batch(rows(), caption_dropout=0.0)
    optimizer = torch.optim.AdamW(controlnet.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):  # the same noise and timesteps every step: a fixed objective to overfit
        loss = body_training_step(
            controlnet, frozen, data, BodyStepSettings(), torch.device("cpu"), generator=torch.Generator().manual_seed(0)
        )["loss"]
        loss.backward()
        assert all(p.grad is None for p in frozen.unet.parameters())
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert np.isfinite(losses).all() and np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


def test_precomputed_and_noised_canvas_paths_run(tiny_zoo):
    controlnet, frozen = setup(tiny_zoo)
    data = outpaint_batch(rows(encoded=True), caption_dropout=0.5, seed=1)
    loss = body_training_step(controlnet, frozen, data, BodyStepSettings(noised_canvas=True), torch.device("cpu"))["loss"]
    loss.backward()
    # (the zoo's ControlNet is fresh from its UNet: zero convolutions, so they are what gets gradients first)
    assert torch.isfinite(loss) and controlnet.controlnet_mid_block.weight.grad.abs().sum() > 0
