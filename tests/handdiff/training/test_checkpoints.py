"""Checkpoint state is read with weights_only: a checkpoint that needs unpickling is refused."""

from __future__ import annotations

import pytest
import torch
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel

from handdiff.training.checkpoints import TrainingState, UnsafeCheckpoint, load_checkpoint, load_state, save_checkpoint


class Payload:
    """Unpickling this object creates a file: what an attacker's object would do, harmlessly."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 3)

    def save_pretrained(self, directory):
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), directory / "weights.pt")

    @classmethod
    def from_pretrained(cls, directory):
        model = cls()
        model.load_state_dict(torch.load(directory / "weights.pt", weights_only=True))
        return model


def trained() -> tuple[Tiny, torch.optim.Optimizer, object, EMAModel]:
    model = Tiny()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99))
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=2, num_training_steps=10)
    ema = EMAModel(model.parameters(), decay=0.9)
    model.linear(torch.randn(4, 3)).square().mean().backward()
    optimizer.step(), scheduler.step(), ema.step(model.parameters())
    return model, optimizer, scheduler, ema


def test_optimizer_scheduler_and_ema_state_round_trip_without_unpickling(tmp_path):
    model, optimizer, scheduler, ema = trained()
    save_checkpoint(tmp_path, model, optimizer, scheduler, TrainingState(step=3, epoch=1, extra={"run_id": "r"}), ema)
    load_state(tmp_path / "state.pt")  # weights_only=True accepts what save_checkpoint writes
    fresh, optimizer2, scheduler2, ema2 = Tiny(), *trained()[1:]
    optimizer2 = torch.optim.AdamW(fresh.parameters(), lr=1e-3, betas=(0.9, 0.99))
    state = load_checkpoint(tmp_path, fresh, optimizer2, scheduler2, ema2)
    assert (state.step, state.extra) == (3, {"run_id": "r"})
    assert torch.equal(fresh.linear.weight, model.linear.weight)
    assert torch.equal(optimizer2.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert all(torch.equal(a, b) for a, b in zip(ema2.shadow_params, ema.shadow_params, strict=True))
    assert scheduler2.state_dict()["last_epoch"] == 1


def test_a_state_file_holding_a_pickled_object_is_refused_and_never_run(tmp_path):
    model, optimizer, scheduler, _ = trained()
    save_checkpoint(tmp_path, model, optimizer, scheduler, TrainingState(step=3))
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    marker = tmp_path / "code-ran"
    state["extra"] = {"run_id": Payload(str(marker))}
    torch.save(state, tmp_path / "state.pt")
    with pytest.raises(UnsafeCheckpoint, match="state.pt: refused"):
        load_checkpoint(tmp_path, Tiny(), optimizer, scheduler)
    assert not marker.exists()
