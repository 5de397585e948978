"""Model loaders: one per kind, local folders, s3:// prefixes (cached), clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from handdiff.assets.tiny_zoo import model_locations
from handdiff.models import loading


def test_sam_tiny_predicts_masks_and_rejects_the_wrong_architecture(tiny_zoo):
    from segment_anything import SamPredictor

    sam = loading.load_sam(model_locations(tiny_zoo)["sam"], arch="tiny")
    predictor = SamPredictor(sam)
    image = np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8)
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(
        point_coords=np.array([[40, 50]]), point_labels=np.array([1]), box=np.array([10, 10, 80, 100]), multimask_output=False
    )
    assert masks.shape == (1, 120, 90) and masks.dtype == bool and scores.shape == (1,)
    with pytest.raises(ValueError, match="does not hold a SAM vit_b checkpoint"):
        loading.load_sam(model_locations(tiny_zoo)["sam"], arch="vit_b")


def test_missing_model_location_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        loading.load_controlnet(str(tmp_path / "nothing-here"))


@pytest.mark.services
def test_every_zoo_model_loads_from_s3(tiny_zoo, s3_prefix, tmp_path, monkeypatch):
    monkeypatch.setenv("HANDDIFF_CACHE", str(tmp_path / "cache"))
    loading.copy_tree(tiny_zoo, s3_prefix)
    pipe = loading.load_sd_pipeline(model_locations(s3_prefix)["sd15"])
    assert list(pipe.unet.config.block_out_channels) == [32, 32, 64]
    assert loading.load_controlnet(model_locations(s3_prefix)["controlnet"]).config.conditioning_channels == 3
    assert loading.load_sam(model_locations(s3_prefix)["sam"], arch="tiny").image_encoder.img_size == 256
    model, processor = loading.load_captioner(model_locations(s3_prefix)["captioner"])
    assert model.config.image_token_index == processor.image_token_id
    assert loading.load_clip(model_locations(s3_prefix)["clip"])[0].config.projection_dim == 32
    weights = loading.inception_weights(model_locations(s3_prefix)["inception"])
    assert weights.startswith(str(tmp_path / "cache"))
    # a second load reuses the cached copy instead of downloading again
    cached = tmp_path / "cache" / "s3" / s3_prefix[len("s3://") :] / "sd15" / "model_index.json"
    stamp = cached.stat().st_mtime_ns
    loading.load_sd_pipeline(model_locations(s3_prefix)["sd15"])
    assert cached.stat().st_mtime_ns == stamp
