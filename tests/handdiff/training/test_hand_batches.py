from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from handdiff.data.hand_crops import HAND_CROP_SCHEMA
from handdiff.data.images import encode_image
from handdiff.data.rle import encode_rle
from handdiff.training.hand_batches import drop_captions, hand_crop_batch
from pipelines.demo_configs import demo_config


def crop(value: int, latents: bytes | None = None) -> dict:
    return {
        "image": encode_image(np.full((16, 16, 3), value, np.uint8), "PNG"),
        "keypoints": [float(value)] * 126,
        "mask": encode_rle(np.ones((16, 16), bool)),
        "sides": ["left"],
        "box": [0, 0, 16],
        "latents": latents,
    }


def rows(n: int, two_crops: bool = True, encoded: bool = False) -> pa.Table:
    latents = np.zeros((4, 2, 2), np.float16).tobytes() if encoded else None
    return pa.Table.from_pylist(
        [
            {
                "image_id": f"x/{i}",
                "dataset": "x",
                "split": "train",
                "gesture": None,
                "caption": f"caption {i}",
                "crops": [crop(10, latents), crop(200, latents)] if two_crops else [crop(10, latents)],
                "text_embedding": np.ones((77, 8), np.float16).tobytes() if encoded else None,
                "crop_size": 16,
                "code_version": "t",
            }
            for i in range(n)
        ],
        schema=HAND_CROP_SCHEMA,
    )


def test_one_crop_drawn_per_row_at_random_each_call():
    batch = hand_crop_batch(rows(400), caption_dropout=0.0, augment=None, seed=0)
    assert batch["pixels"].shape == (400, 16, 16, 3) and batch["mask"].shape == (400, 16, 16) and batch["keypoints"].shape == (400, 42, 3)
    picks = Counter(int(v) for v in batch["pixels"][:, 0, 0, 0])
    assert set(picks) == {10, 200} and abs(picks[10] / 400 - 0.5) < 0.125  # both candidates, about evenly
    assert (batch["keypoints"][:, 0, 0] == batch["pixels"][:, 0, 0, 0]).all()  # keypoints travel with their crop
    other = hand_crop_batch(rows(400), caption_dropout=0.0, augment=None, seed=1)
    assert (other["pixels"][:, 0, 0, 0] != batch["pixels"][:, 0, 0, 0]).any()  # another epoch draws anew


def test_captions_are_dropped_at_the_configured_rate():
    captions = drop_captions([f"c{i}" for i in range(5000)], 0.1, np.random.default_rng(0))
    dropped = sum(c == "" for c in captions) / 5000
    assert abs(dropped - 0.1) < 0.021  # 5 standard deviations of a binomial(5000, 0.1) fraction
    assert all(c in ("", f"c{i}") for i, c in enumerate(captions))
    batch = hand_crop_batch(rows(10, two_crops=False), caption_dropout=1.0, augment=None, seed=0)
    assert list(batch["caption"]) == [""] * 10


def test_precomputed_encodings_are_passed_instead_of_pixels():
    batch = hand_crop_batch(rows(3, encoded=True), caption_dropout=0.0, augment=None, seed=0)
    assert "pixels" not in batch and batch["latents"].shape == (3, 4, 2, 2) and batch["text_embedding"].shape == (3, 77, 8)


def test_augmentation_of_precomputed_crops_is_refused_not_skipped():
    with pytest.raises(ValueError, match="precomputed latents"):
        hand_crop_batch(rows(3, encoded=True), caption_dropout=0.0, augment={}, seed=0)


def test_train_hand_refuses_a_precomputed_set_with_augmentation_before_starting(tmp_path, capsys):
    from handdiff.data.parts import write_part
    from handdiff.data.set_settings import write_set_settings
    from pipelines import train_hand

    write_part(rows(2, encoded=True), f"{tmp_path}/records")
    write_set_settings(str(tmp_path), {"size": 16, "margin": 0.25, "min_hand_points": 5})  # as build-hand-crops writes it
    with pytest.raises(SystemExit) as exit_info:
        train_hand.main(["--config", "pipelines/configs/train_hand_demo.yaml", f"data.path={tmp_path}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "train.augment is on" in err and "precomputed latents" in err and "train.augment=null" in err
    cfg = train_hand.Config.model_validate({**demo_config("train-hand", "runs/demo").model_dump(), "data": {"path": str(tmp_path)}})
    cfg.train.augment = None
    cfg.preflight()  # without augmentation the set is fine


def test_train_hand_refuses_a_crop_set_that_does_not_record_its_settings(tmp_path, capsys):
    """The model must carry the crop set's size, margin and hand rule: a set without them is
    refused before anything starts, rather than trained with guessed values."""
    from handdiff.data.parts import write_part
    from pipelines import train_hand

    write_part(rows(2), f"{tmp_path}/records")
    with pytest.raises(SystemExit) as exit_info:
        train_hand.main(["--config", "pipelines/configs/train_hand_demo.yaml", f"data.path={tmp_path}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "data.path:" in err and "settings.json not found" in err and "rebuild it" in err
