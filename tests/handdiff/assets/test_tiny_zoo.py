"""The tiny zoo: real classes, saved in their own formats, loaded by the same loaders as
real checkpoints (from a local folder and from S3), and runnable."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from handdiff import storage
from handdiff.assets import tiny_zoo as zoo_builder
from handdiff.assets.tiny_zoo import model_locations
from handdiff.models import loading


def test_zoo_is_reused_until_its_code_changes(tmp_path):
    out = str(tmp_path / "zoo")
    first = zoo_builder.build_tiny_zoo(out)
    assert not first["cached"] and first["bytes"] > 10 * 2**20
    stamp = (tmp_path / "zoo" / "sd15" / "model_index.json").stat().st_mtime_ns
    assert zoo_builder.build_tiny_zoo(out)["cached"]
    assert (tmp_path / "zoo" / "sd15" / "model_index.json").stat().st_mtime_ns == stamp
    manifest = json.loads((tmp_path / "zoo" / "zoo.json").read_text())
    manifest["code_hash"] = "made-by-older-code"
    (tmp_path / "zoo" / "zoo.json").write_text(json.dumps(manifest))
    rebuilt = zoo_builder.build_tiny_zoo(out)
    assert not rebuilt["cached"] and rebuilt["code_hash"] == zoo_builder.code_hash()


def test_zoo_refuses_to_replace_a_folder_that_is_not_a_zoo(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing to replace it"):
        zoo_builder.build_tiny_zoo(str(tmp_path))
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_zoo_is_deterministic(tiny_zoo, tmp_path):
    other = zoo_builder.build_tiny_zoo(str(tmp_path / "zoo2"), force=True)
    assert other["bytes"] == json.loads(storage.read_text(storage.join(tiny_zoo, "zoo.json")))["bytes"]
    a = loading.load_sd_pipeline(model_locations(tiny_zoo)["sd15"]).unet.state_dict()
    b = loading.load_sd_pipeline(str(tmp_path / "zoo2" / "sd15")).unet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sd_pipeline_generates_two_steps_at_64(tiny_zoo):
    pipe = loading.load_sd_pipeline(model_locations(tiny_zoo)["sd15"])
    assert pipe.vae_scale_factor == 8
    assert pipe.unet.config.in_channels == 4 and pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    assert pipe.tokenizer.model_max_length == 77
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        ["a hand", "two hands"], num_inference_steps=2, height=64, width=64, output_type="np", generator=torch.Generator().manual_seed(0)
    ).images
    assert images.shape == (2, 64, 64, 3) and np.isfinite(images).all()
    assert images.min() >= 0 and images.max() <= 1


def test_controlnet_matches_the_unet_and_runs(tiny_zoo):
    from diffusers import StableDiffusionControlNetPipeline

    pipe = loading.load_sd_pipeline(model_locations(tiny_zoo)["sd15"])
    controlnet = loading.load_controlnet(model_locations(tiny_zoo)["controlnet"])
    assert controlnet.config.block_out_channels == pipe.unet.config.block_out_channels
    assert controlnet.config.conditioning_channels == 3
    cpipe = StableDiffusionControlNetPipeline(
        **{k: pipe.components[k] for k in ("vae", "text_encoder", "tokenizer", "unet", "scheduler")},
        controlnet=controlnet,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    cpipe.set_progress_bar_config(disable=True)
    skeleton = Image.fromarray(np.zeros((64, 64, 3), np.uint8))
    out = cpipe("a person", image=skeleton, num_inference_steps=2, height=64, width=64, output_type="np").images
    assert out.shape == (1, 64, 64, 3) and np.isfinite(out).all()


def test_llava_captions_with_the_llava_1_5_prompt_format(tiny_zoo):
    model, processor = loading.load_captioner(model_locations(tiny_zoo)["captioner"])
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the person."}]}]
    prompt = processor.apply_chat_template(conversation, add_generation_prompt=True)
    assert prompt == "USER: <image>\nDescribe the person. ASSISTANT:"
    image = Image.fromarray(np.zeros((80, 60, 3), np.uint8))
    inputs = processor(images=[image, image], text=[prompt, prompt], return_tensors="pt", padding=True)
    # the processor expands <image> into one token per vision patch (4 x 4 at 56 px, patch 14)
    assert (inputs.input_ids[0] == model.config.image_token_index).sum() == 16
    out = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out.shape == (2, inputs.input_ids.shape[1] + 5)
    assert all(isinstance(t, str) for t in processor.batch_decode(out[:, inputs.input_ids.shape[1] :], skip_special_tokens=True))


def test_clip_scores_text_against_images(tiny_zoo):
    model, processor = loading.load_clip(model_locations(tiny_zoo)["clip"])
    images = [Image.fromarray(np.full((40, 40, 3), v, np.uint8)) for v in (0, 255)]
    inputs = processor(text=["a hand", "a person waving"], images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits_per_image.shape == (2, 2) and torch.isfinite(out.logits_per_image).all()


def test_inception_weights_drive_torchmetrics_fid_offline(tiny_zoo):
    from torchmetrics.image.fid import FrechetInceptionDistance

    weights = loading.inception_weights(model_locations(tiny_zoo)["inception"])
    fid = FrechetInceptionDistance(feature=192, feature_extractor_weights_path=weights)
    rng = torch.Generator().manual_seed(0)
    real = torch.randint(0, 255, (6, 3, 64, 64), dtype=torch.uint8, generator=rng)
    fid.update(real, real=True)
    fid.update(real, real=False)
    same = fid.compute()
    fid.reset()
    fid.update(real, real=True)
    fid.update(torch.zeros_like(real), real=False)
    assert fid.compute() > same


def test_model_locations_need_no_built_zoo_and_match_the_manifest(tiny_zoo, tmp_path):
    assert model_locations(str(tmp_path / "not-built"))["sd15"] == str(tmp_path / "not-built" / "sd15")
    manifest = json.loads(storage.read_text(storage.join(tiny_zoo, "zoo.json")))["models"]
    for key, location in model_locations(tiny_zoo).items():
        assert location == storage.join(tiny_zoo, manifest[key]) and storage.exists(location)
