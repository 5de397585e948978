from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMScheduler

from handdiff.assets.tiny_zoo import model_locations
from handdiff.models.hand_generator import HandGenerator, build_hand_generator
from handdiff.models.loading import load_sd_pipeline
from handdiff.training.checkpoints import TrainingState, load_checkpoint, save_checkpoint
from handdiff.training.frozen import FrozenParts
from handdiff.training.hand_step import StepSettings, hand_training_step


def setup(zoo):
    sd = load_sd_pipeline(model_locations(zoo)["sd15"])
    model = build_hand_generator(sd.unet)
    return model, FrozenParts(sd.vae, sd.text_encoder, sd.tokenizer, DDPMScheduler.from_config(sd.scheduler.config))


def batch(n: int = 2, size: int = 64) -> dict:
    rng = np.random.default_rng(0)
    keypoints = np.zeros((n, 42, 3), np.float32)
    keypoints[:, :21] = np.column_stack([rng.uniform(10, 50, 21), rng.uniform(10, 50, 21), np.ones(21)])
    mask = np.zeros((n, size, size), np.uint8)
    mask[:, 10:50, 10:50] = 1  # a hand-sized blob where the keypoints are
    return {
        "pixels": rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8),
        "mask": mask,
        "keypoints": keypoints,
        "caption": np.array(["a hand", ""], dtype=object)[:n],
    }


def test_a_step_gives_finite_losses_and_trains_the_generator(tiny_zoo):
    model, frozen = setup(tiny_zoo)
    losses = hand_training_step(
        model, frozen, batch(), StepSettings(sigma=1.0), torch.device("cpu"), generator=torch.Generator().manual_seed(0)
    )
    assert set(losses) == {"loss", "loss_ldm", "loss_mask"} and all(torch.isfinite(v) for v in losses.values())
    assert torch.isclose(losses["loss"], losses["loss_ldm"] + 0.5 * losses["loss_mask"])
    losses["loss"].backward()
    assert model.unet.conv_in.weight.grad is not None and frozen.vae.encoder.conv_in.weight.grad is None


def test_a_few_steps_on_one_batch_lower_the_loss(tiny_zoo):
    model, frozen = setup(tiny_zoo)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)  # high for a real run; a tiny model overfitting one batch
    data, losses = batch(), []
    for _ in range(30):  # the same noise and timesteps every step: a fixed objective to overfit
        out = hand_training_step(
            model, frozen, data, StepSettings(sigma=1.0, mask_dropout=0.0), torch.device("cpu"), generator=torch.Generator().manual_seed(0)
        )
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append({k: v.item() for k, v in out.items()})
    for part in ("loss", "loss_ldm", "loss_mask"):
        assert np.mean([x[part] for x in losses[-5:]]) < 0.8 * np.mean([x[part] for x in losses[:5]]), part


def test_checkpoints_restore_weights_optimizer_and_step(tiny_zoo, tmp_path):
    from diffusers.optimization import get_scheduler

    model, _ = setup(tiny_zoo)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=2, num_training_steps=10)
    model.mask_head.layers[0].weight.data.fill_(0.25)
    optimizer.step(), scheduler.step()
    save_checkpoint(tmp_path, model, optimizer, scheduler, TrainingState(step=7, epoch=2, extra={"run_id": "abc"}))
    fresh, _ = setup(tiny_zoo)
    optimizer2 = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    scheduler2 = get_scheduler("constant_with_warmup", optimizer2, num_warmup_steps=2, num_training_steps=10)
    state = load_checkpoint(tmp_path, fresh, optimizer2, scheduler2, model_class=HandGenerator)
    assert (state.step, state.epoch, state.extra) == (7, 2, {"run_id": "abc"})
    assert torch.equal(fresh.mask_head.layers[0].weight, model.mask_head.layers[0].weight)
    assert scheduler2.state_dict()["last_epoch"] == scheduler.state_dict()["last_epoch"]
    assert HandGenerator.from_pretrained(tmp_path / "model").unet.config.in_channels == 15  # a checkpoint is a model folder
