"""Stage-2 training throughput: Ray Train (2 DDP workers, gloo) against a plain single-process
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
from handdiff.data.images import encode_image
from handdiff.data.outpaint import OUTPAINT_SCHEMA, make_canvas
from handdiff.data.parts import write_part
from handdiff.data.rle import encode_rle
from handdiff.training.body_batches import outpaint_batch
from pipelines import train_body
from pipelines.job import TrackingConfig

SIZE, ROWS, STEPS, BATCH = 64, 64, 30, 8


def synthetic_outpaint_set(directory: str) -> None:
    """ROWS random people with a hand blob: content does not matter for speed."""
    rng = np.random.default_rng(0)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[24:40, 24:40] = True
    rows = []
    for i in range(ROWS):
        image = rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
        rows.append(
            {
                "image_id": f"bench/{i}",
                "dataset": "bench",
                "split": "train",
                "caption": "a person",
                "image": encode_image(image),
                "canvas": encode_image(make_canvas(image, mask), "PNG"),
                "mask": encode_rle(mask),
                "skeleton": encode_image(image // 8, "PNG"),
                "keypoints": [0.0] * 399,
                "box": [0, 0, SIZE],
                "size": SIZE,
                "latents": None,
                "canvas_latents": None,
                "text_embedding": None,
                "code_version": "bench",
            }
        )
    for start in range(0, ROWS, 8):
        write_part(pa.Table.from_pylist(rows[start : start + 8], schema=OUTPAINT_SCHEMA), f"{directory}/records")


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_zoo(f"{tmp}/zoo")
        synthetic_outpaint_set(f"{tmp}/outpaint")
        zoo = model_locations(f"{tmp}/zoo")
        cfg = train_body.Config(
            tracking=TrackingConfig(run_name="bench", tracking_uri=f"sqlite:///{tmp}/mlflow.db"),
            data={"path": f"{tmp}/outpaint", "validation_rows": 1, "shuffle_buffer": 0, "tasks": {"num_cpus": 0.5, "concurrency": 2}},
            model={"base": zoo["sd15"], "controlnet": zoo["controlnet"]},
            train={"steps": STEPS, "batch_size": BATCH, "warmup_steps": 0, "mixed_precision": "no", "gradient_checkpointing": False},
            scaling={"workers": 2},
            checkpoint={"storage_path": f"{tmp}/runs", "every_steps": STEPS},
            logging={"every_steps": 1, "sample_every_steps": 10**6},
            registered_model=None,
        )
        return compare(
            "train_body", train_body, cfg, OUTPAINT_SCHEMA, outpaint_batch, {"caption_dropout": 0.1}, tmp, f"tiny {SIZE}px, batch {BATCH}"
        )
