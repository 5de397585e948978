"""SD 1.5's frozen parts as both stages keep them (handdiff.models.sd_parts): one layout, one prompt encoder."""

from __future__ import annotations

import torch

from handdiff.assets.tiny_zoo import model_locations
from handdiff.models.loading import load_sd_pipeline
from handdiff.models.sd_parts import encode_prompts, load_sd_parts, save_sd_parts, vae_factor


def test_the_parts_round_trip_and_prompts_encode_to_77_tokens(tiny_zoo, tmp_path):
    sd = load_sd_pipeline(model_locations(tiny_zoo)["sd15"])
    save_sd_parts(tmp_path, sd.vae, sd.text_encoder, sd.tokenizer, sd.scheduler)
    parts = load_sd_parts(tmp_path)
    assert set(parts) == {"vae", "text_encoder", "tokenizer", "scheduler"}
    assert vae_factor(parts["vae"]) == 2 ** (len(sd.vae.config.block_out_channels) - 1)
    text = encode_prompts(parts["tokenizer"], parts["text_encoder"], ["a person", ""], "cpu")
    assert text.shape == (2, 77, sd.text_encoder.config.hidden_size)
    assert torch.equal(text, encode_prompts(sd.tokenizer, sd.text_encoder, ["a person", ""], "cpu"))  # the same weights back
