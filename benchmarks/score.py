"""Scoring speed: the ``score`` job on Ray Data against a plain single-process loop over the same
stage code (``RealFeatures``: the real side's Inception; ``DetectPeople``: Holistic; ``ImageScores``:
SAM, CLIP, Inception), models and images, in images/s.
The loop's steady state times the stage calls alone; end to end, the loop runs from model load
to the figures, Ray from a cold ``ray.init`` through the whole job (figures included).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from benchmarks.report import Figure
from handdiff import storage
from handdiff.assets.figures import background, draw_person, person_keypoints
from handdiff.assets.tiny_zoo import build_tiny_zoo, model_locations
from handdiff.data.conditions import BENCHMARK_SCHEMA
from handdiff.data.images import encode_image
from handdiff.data.parts import parts_by_id, read_index_files, write_index, write_part
from handdiff.data.rle import encode_rle
from handdiff.inference.generate_stages import GENERATION_SCHEMA
from handdiff.metrics.score_stages import DetectPeople, ImageScores, RealFeatures, real_inputs, score_inputs, write_real
from handdiff.metrics.summary import score_set
from pipelines import score
from pipelines.job import RayConfig, TrackingConfig, init_ray

SIZE, IMAGES, BATCH, THREADS = 128, 32, 8, 2


def synthetic_run(directory: str) -> None:
    """IMAGES drawn people as a benchmark set and, unchanged, as a method's generated images."""
    rng = np.random.default_rng(0)
    conditions, generated = [], []
    for i in range(IMAGES):
        keypoints = person_keypoints(SIZE / 2, 4, SIZE * 0.9, {"left": True, "right": True}, {"left": "palm", "right": "fist"}, rng)
        image = background(SIZE, SIZE, rng)
        draw_person(image, keypoints, rng)
        image_id = f"bench/{i:04d}"
        conditions.append(
            {
                "image_id": image_id,
                "keypoints": keypoints.reshape(-1).tolist(),
                "caption": "a person",
                "size": SIZE,
                "seed": i,
                "dataset": "bench",
                "gesture": "palm",
                "box": [0, 0, SIZE],
                "split": "test",
                "real_image": encode_image(image),
                "person_mask": encode_rle(np.ones((SIZE, SIZE), bool)),
                "code_version": "bench",
            }
        )
        uri = f"{directory}/generated/images/{image_id}.png"
        storage.write_bytes(uri, encode_image(image, "PNG"))
        generated.append(
            {
                "image_id": image_id,
                "dataset": "bench",
                "gesture": "palm",
                "method": "oracle",
                "seed": i,
                "caption": "a person",
                "size": SIZE,
                "image_uri": uri,
                "seconds": 0.0,
                "stage_seconds": "{}",
                "models": "{}",
                "code_version": "bench",
            }
        )
    write_part(pa.Table.from_pylist(conditions, schema=BENCHMARK_SCHEMA), f"{directory}/conditions/records")
    write_part(pa.Table.from_pylist(generated, schema=GENERATION_SCHEMA), f"{directory}/generated/records")


def plain_loop(cfg: score.Config, directory: str) -> tuple[float, float]:
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        start = time.perf_counter()
        real_stage, stages = RealFeatures(cfg.models.inception), [DetectPeople(), ImageScores(**cfg.models.model_dump())]
        scoring, rows = 0.0, []
        where = parts_by_id(f"{cfg.conditions}/records")
        _, real_index = write_index([{"image_id": i, "part": p} for i, p in where.items()], f"{directory}/loop_real_index", set(), BATCH)
        for file in real_index:
            batch = real_inputs(read_index_files(pa.table({"file": [file]})), "bench")
            began = time.perf_counter()
            batch = real_stage(batch)
            scoring += time.perf_counter() - began
            write_real(batch, f"{directory}/loop_real")
        real_parts = parts_by_id(f"{directory}/loop_real/records")
        entries = [{**r, "output": "loop", "part": real_parts[r["image_id"]]} for r in score.generated_rows(cfg.generated)]
        _, index = write_index(entries, f"{directory}/loop_index", set(), BATCH)
        for file in index:
            batch = score_inputs(read_index_files(pa.table({"file": [file]})), "bench")
            began = time.perf_counter()
            for stage in stages:
                batch = stage(batch)
            rows += batch.to_pylist()
            scoring += time.perf_counter() - began
        score_set(rows, f"{directory}/loop_figures")
        return IMAGES / scoring, IMAGES / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)


def run() -> list[Figure]:
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_zoo(f"{tmp}/zoo")
        synthetic_run(tmp)
        zoo = model_locations(f"{tmp}/zoo")
        cfg = score.Config(
            tracking=TrackingConfig(run_name="bench", tracking_uri=f"sqlite:///{tmp}/mlflow.db"),
            generated=f"{tmp}/generated",
            conditions=f"{tmp}/conditions",
            output=f"{tmp}/scores",
            models={"clip": zoo["clip"], "sam": zoo["sam"], "sam_arch": "tiny", "inception": zoo["inception"]},
            detection={"actors": 1, "batch_size": BATCH, "num_cpus": 1, "num_gpus": 0},
            resources={"actors": 1, "batch_size": BATCH, "num_cpus": 1, "num_gpus": 0},
            tasks={"num_cpus": 0.5, "concurrency": 2},
            bootstrap=0,
            index_rows_per_file=BATCH,
        )
        steady, loop_e2e = plain_loop(cfg, tmp)
        if ray.is_initialized():
            ray.shutdown()
        start = time.perf_counter()
        init_ray(RayConfig(num_cpus=8))
        score.run(cfg)
        ray_e2e = IMAGES / (time.perf_counter() - start)
        assert json.loads(Path(f"{tmp}/scores/summary.json").read_text())["metrics"]["images"] == IMAGES
    return [
        Figure("score", f"{SIZE}px, batch {BATCH}, plain loop, stage calls only", steady, "images/s"),
        Figure("score", f"{IMAGES} images end to end, plain loop", loop_e2e, "images/s"),
        Figure("score", f"{IMAGES} images end to end, Ray job (from ray.init)", ray_e2e, "images/s", loop_e2e, "of loop"),
    ]
