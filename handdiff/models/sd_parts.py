"""SD 1.5's frozen parts as both stages' pipelines keep them: one folder layout, one prompt encoder.

<dir>/vae/  text_encoder/  tokenizer/  scheduler/      (diffusers' own layout)
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler
from transformers import CLIPTextModel, CLIPTokenizer


def encode_prompts(tokenizer, text_encoder, prompts: list[str], device: torch.device | str) -> torch.Tensor:
    """(B, 77, D) CLIP text embeddings of ``prompts`` (padded to the tokenizer's 77 tokens)."""
    ids = tokenizer(
        list(prompts), padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
    return text_encoder(ids.to(device))[0]


def save_sd_parts(directory: str | Path, vae, text_encoder, tokenizer, scheduler) -> None:
    directory = Path(directory)
    vae.save_pretrained(directory / "vae")
    text_encoder.save_pretrained(directory / "text_encoder")
    tokenizer.save_pretrained(directory / "tokenizer")
    scheduler.save_pretrained(directory / "scheduler")


def load_sd_parts(directory: str | Path, torch_dtype: torch.dtype | None = None) -> dict:
    """``{"vae", "text_encoder", "tokenizer", "scheduler"}`` from a folder in ``save_sd_parts``' layout."""
    directory = Path(directory)
    kwargs = {"torch_dtype": torch_dtype} if torch_dtype else {}
    return {
        "vae": AutoencoderKL.from_pretrained(directory / "vae", **kwargs),
        "text_encoder": CLIPTextModel.from_pretrained(directory / "text_encoder", **kwargs),
        "tokenizer": CLIPTokenizer.from_pretrained(directory / "tokenizer"),
        "scheduler": DDIMScheduler.from_pretrained(directory / "scheduler"),
    }


def vae_factor(vae) -> int:
    """Pixels per latent (8 for SD 1.5)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)
