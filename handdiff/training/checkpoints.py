"""Training checkpoints: a model folder that loads with ``from_pretrained`` plus the state to resume.

    <checkpoint>/model/      the trained weights (``HandGenerator.save_pretrained`` layout)
    <checkpoint>/ema/        the EMA weights, when EMA is on (same layout)
    <checkpoint>/state.pt    optimizer, lr scheduler, EMA state, step, epoch, extra (e.g. the MLflow run id)

``state.pt`` holds only tensors and plain values and is read with ``weights_only=True``:
whoever can write the checkpoint bucket must not get to run code on every worker, so
a state file holding any other object is refused, never unpickled.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class TrainingState:
    step: int = 0
    epoch: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(directory: str | Path, model, optimizer, lr_scheduler, state: TrainingState, ema=None) -> None:
    """``model`` is the unwrapped model (no DDP); ``ema`` a diffusers ``EMAModel`` or None."""
    directory = Path(directory)
    model.save_pretrained(directory / "model")
    if ema is not None:
        ema.store(model.parameters())
        ema.copy_to(model.parameters())
        model.save_pretrained(directory / "ema")
        ema.restore(model.parameters())
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "lr_scheduler": lr_scheduler.state_dict(),
            "ema": ema.state_dict() if ema else None,
            "step": state.step,
            "epoch": state.epoch,
            "extra": state.extra,
        },
        directory / "state.pt",
    )


def load_checkpoint(directory: str | Path, model, optimizer, lr_scheduler, ema=None, model_class=None) -> TrainingState:
    """Restore weights and state into ``model`` (unwrapped) and the rest; returns the step to continue from."""
    directory = Path(directory)
    saved = (model_class or type(model)).from_pretrained(directory / "model")
    model.load_state_dict(saved.state_dict())
    state = load_state(directory / "state.pt")
    optimizer.load_state_dict(state["optimizer"])
    lr_scheduler.load_state_dict(state["lr_scheduler"])
    if ema is not None and state["ema"] is not None:
        ema.load_state_dict(state["ema"])
    return TrainingState(state["step"], state["epoch"], state["extra"])


class UnsafeCheckpoint(RuntimeError):
    """A checkpoint file holds objects that only unpickling could rebuild."""


def load_state(path: str | Path) -> dict[str, Any]:
    """A ``state.pt`` read with ``weights_only=True``: tensors, numbers, strings, lists, dicts."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnsafeCheckpoint(
            f"{path}: refused: it holds objects other than tensors and plain values, which loading would "
            f"have to unpickle (and so run code from storage): {first}"
        ) from None
