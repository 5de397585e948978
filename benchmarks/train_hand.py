"""Stage-1 training throughput: Ray Train (2 DDP workers, gloo) against a plain single-process
loop over the job's own step, per step and end to end (``benchmarks.training``). SD 1.5-sized
figures need a GPU machine, which CI never has.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pyarrow as pa

from benchmarks.report import Figure
from benchmarks.training import compare
from handdiff.assets.tiny_zoo import build_tiny_zoo, model_locations
from handdiff.data.hand_crops import HAND_CROP_SCHEMA
from handdiff.data.images import encode_image
from handdiff.data.parts import write_part
from handdiff.data.rle import encode_rle
from handdiff.data.set_settings import write_set_settings
from handdiff.training.hand_batches import hand_crop_batch
from pipelines import train_hand
from pipelines.job import TrackingConfig

SIZE, ROWS, STEPS, BATCH = 64, 64, 30, 8


def synthetic_crop_set(directory: str) -> None:
    """ROWS random crops with blob masks and hand keypoints: content does not matter for speed."""
    rng = np.random.default_rng(0)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[16:48, 16:48] = True
    rows = []
    for i in range(ROWS):
        keypoints = np.zeros((42, 3), np.float32)
        keypoints[:21] = np.column_stack([rng.uniform(16, 48, 21), rng.uniform(16, 48, 21), np.ones(21)])
        crop = {
            "image": encode_image(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)),
            "keypoints": keypoints.reshape(-1).tolist(),
            "mask": encode_rle(mask),
            "sides": ["left"],
            "box": [0, 0, SIZE],
            "latents": None,
        }
        rows.append(
            {
                "image_id": f"bench/{i}",
                "dataset": "bench",
                "split": "train",
                "gesture": None,
                "caption": "a hand",
                "crops": [crop],
                "text_embedding": None,
                "crop_size": SIZE,
                "code_version": "bench",
            }
        )
    for start in range(0, ROWS, 8):
        write_part(pa.Table.from_pylist(rows[start : start + 8], schema=HAND_CROP_SCHEMA), f"{directory}/records")
    write_set_settings(directory, {"size": SIZE, "margin": 0.25, "min_hand_points": 5})  # what build-hand-crops records


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_zoo(f"{tmp}/zoo")
        synthetic_crop_set(f"{tmp}/crops")
        cfg = train_hand.Config(
            tracking=TrackingConfig(run_name="bench", tracking_uri=f"sqlite:///{tmp}/mlflow.db"),
            data={"path": f"{tmp}/crops", "validation_rows": 1, "shuffle_buffer": 0, "tasks": {"num_cpus": 0.5, "concurrency": 2}},
            model={"base": model_locations(f"{tmp}/zoo")["sd15"]},
            train={"steps": STEPS, "batch_size": BATCH, "warmup_steps": 0, "mixed_precision": "no", "gradient_checkpointing": False},
            scaling={"workers": 2},
            checkpoint={"storage_path": f"{tmp}/runs", "every_steps": STEPS},
            logging={"every_steps": 1, "sample_every_steps": 10**6},
            registered_model=None,
        )
        augment = cfg.train.augment.model_dump()
        return compare(
            "train_hand",
            train_hand,
            cfg,
            HAND_CROP_SCHEMA,
            hand_crop_batch,
            {"caption_dropout": 0.1, "augment": augment},
            tmp,
            f"tiny {SIZE}px, batch {BATCH}",
        )
