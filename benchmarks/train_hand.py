"""Stage-1 training throughput: Ray Train (2 DDP workers, gloo) against a plain single-process
torch loop on the same tiny model, step code and batches (the baseline), in samples/s per
optimizer step after warm-up, and the whole job end to end (Ray start-up included).
SD 1.5-sized figures need a GPU machine, which CI never has.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa
import torch
from mlflow.tracking import MlflowClient

from benchmarks.report import Figure
from handdiff.assets.tiny_zoo import build_tiny_zoo, model_locations
from handdiff.data.hand_crops import HAND_CROP_SCHEMA
from handdiff.data.images import encode_image
from handdiff.data.parts import write_part
from handdiff.data.rle import encode_rle
from handdiff.training.hand_batches import hand_crop_batch
from pipelines import train_hand
from pipelines.job import RayConfig, TrackingConfig, init_ray

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
        crop = {"image": encode_image(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)), "keypoints": keypoints.reshape(-1).tolist(),
                "mask": encode_rle(mask), "sides": ["left"], "box": [0, 0, SIZE], "latents": None}  # fmt: skip
        rows.append({"image_id": f"bench/{i}", "dataset": "bench", "split": "train", "gesture": None, "caption": "a hand",
                     "crops": [crop], "text_embedding": None, "crop_size": SIZE, "code_version": "bench"})  # fmt: skip
    for start in range(0, ROWS, 8):
        write_part(pa.Table.from_pylist(rows[start : start + 8], schema=HAND_CROP_SCHEMA), f"{directory}/records")


def plain_loop(cfg: train_hand.Config) -> float:
    """Samples/s of a single-process loop: same model, step function, batches."""
    from diffusers import DDPMScheduler

    from handdiff.data.parts import read_parts
    from handdiff.models.hand_generator import build_hand_generator
    from handdiff.models.loading import load_sd_pipeline
    from handdiff.training.frozen import FrozenParts
    from handdiff.training.hand_step import StepSettings, hand_training_step

    sd = load_sd_pipeline(cfg.model.base)
    model = build_hand_generator(sd.unet)
    frozen = FrozenParts(sd.vae, sd.text_encoder, sd.tokenizer, DDPMScheduler.from_config(sd.scheduler.config))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    table = read_parts(f"{cfg.data.path}/records", schema=HAND_CROP_SCHEMA)
    times = []
    for step in range(STEPS):
        start = time.perf_counter()
        batch = hand_crop_batch(table.slice((step * BATCH) % ROWS, BATCH), caption_dropout=0.1, augment={})
        loss = hand_training_step(model, frozen, batch, StepSettings(sigma=SIZE / 64), torch.device("cpu"))["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return BATCH / statistics.median(times[3:])


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_zoo(f"{tmp}/zoo")
        synthetic_crop_set(f"{tmp}/crops")
        uri = f"sqlite:///{tmp}/mlflow.db"
        cfg = train_hand.Config(
            tracking=TrackingConfig(run_name="bench", tracking_uri=uri),
            data={"path": f"{tmp}/crops", "validation_crops": 1, "shuffle_buffer": 0, "tasks": {"batch_size": 8, "num_cpus": 0.5, "concurrency": 2}},
            model={"base": model_locations(f"{tmp}/zoo")["sd15"]},
            train={"steps": STEPS, "batch_size": BATCH, "warmup_steps": 0, "mixed_precision": "no", "gradient_checkpointing": False},
            scaling={"workers": 2}, checkpoint={"storage_path": f"{tmp}/runs", "every_steps": STEPS},
            logging={"every_steps": 1, "sample_every_steps": 10**6}, registered_model=None,
        )  # fmt: skip
        loop = plain_loop(cfg)
        init_ray(RayConfig(num_cpus=8))
        start = time.perf_counter()
        train_hand.run(cfg)
        wall = time.perf_counter() - start
        client = MlflowClient(uri)
        (mlrun,) = client.search_runs([client.get_experiment_by_name("handdiff-train-hand").experiment_id])
        per_step = [m.value for m in sorted(client.get_metric_history(mlrun.info.run_id, "samples_per_second"), key=lambda m: m.step)]
        ray_rate = statistics.median(per_step[3:])
    return [
        Figure("train", f"tiny {SIZE}px, batch {BATCH}, plain loop", loop, "samples/s"),
        Figure("train", f"tiny {SIZE}px, batch {BATCH}, Ray Train 2x DDP", ray_rate, "samples/s", loop, "of loop"),
        Figure("train", f"Ray Train job, {STEPS} steps, end to end", STEPS * BATCH / wall, "samples/s", loop, "of loop"),
    ]
