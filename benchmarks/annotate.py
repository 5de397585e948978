"""Annotation throughput: the Ray Data pipeline against a plain single-process loop over
the same images and the same stage code and models (the baseline), and the peak memory
of all processes as the input grows 1x -> 4x (flat when the pipeline streams).

Both sides are timed end to end, model loading included (Ray also starts its actors).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pyarrow as pa
import ray

from benchmarks.report import Figure
from handdiff.annotation.stages import (
    HandMasks, LlavaCaptions, WholeBodyKeypoints, load_images, to_records, write_parts,
)  # fmt: skip
from handdiff.assets.sample_data import write_hagrid
from handdiff.data.parts import INDEX_SCHEMA
from handdiff.assets.tiny_zoo import build_tiny_zoo
from handdiff.data.readers import open_reader
from pipelines import annotate
from pipelines.job import RayConfig, TrackingConfig, init_ray

TRAIN_PER_GESTURE = {"1x": 8, "4x": 32}  # 4 gestures: 32 and 128 good images (+ 9 bad entries)


@contextmanager
def peak_rss(children: bool):
    """Peak resident memory (bytes) of this process (and, with ``children``, all its
    descendants: a local Ray instance's raylet, workers and actors), sampled at 20 Hz."""
    me, peak, stop = psutil.Process(), [0], threading.Event()

    def sample():
        while not stop.is_set():
            total = 0
            for proc in [me, *(me.children(recursive=True) if children else [])]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def plain_loop(cfg: annotate.Config, spec: annotate.DatasetSpec, out: str, batch: int = 4) -> int:
    """The baseline: every stage in this process, one batch after another."""
    reader_options = spec.source.model_dump()
    versions = annotate.annotators(cfg, spec)
    keypoints = WholeBodyKeypoints()
    masks = HandMasks(cfg.masks.sam, cfg.masks.arch)
    captions = LlavaCaptions(cfg.captions.captioner, cfg.captions.instruction, cfg.captions.max_new_tokens, dtype=cfg.captions.dtype)
    entries = [{"image_id": e["image_id"], "entry": json.dumps(e)} for e in open_reader(**reader_options).entries()]
    for start in range(0, len(entries), batch):
        table = pa.Table.from_pylist(entries[start : start + batch], schema=INDEX_SCHEMA)
        table = load_images(to_records(table, reader_options, versions, "bench"))
        write_parts(captions(masks(keypoints(table))), out)
    return len(entries)


def run() -> list[Figure]:
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_zoo(f"{tmp}/zoo")
        Path(f"{tmp}/sample-data").mkdir()  # demo_config reads the zoo and the sample-data layout
        for size, per_gesture in TRAIN_PER_GESTURE.items():
            write_hagrid(f"{tmp}/{size}/hagrid", per_gesture={"train": per_gesture})
            cfg = annotate.demo_config(tmp, TrackingConfig(run_name=f"bench-{size}", tracking_uri=f"sqlite:///{tmp}/mlflow.db"))
            cfg.datasets = {"hagrid": {"source": {"dataset": "hagrid", "images": f"{tmp}/{size}/hagrid/hagrid_dataset",
                                                  "annotations": f"{tmp}/{size}/hagrid/annotations"}}}  # fmt: skip
            spec = cfg.datasets["hagrid"]
            start = time.perf_counter()
            with peak_rss(children=False) as loop_peak:
                n = plain_loop(cfg, spec, f"{tmp}/{size}/loop")
            loop_rate = n / (time.perf_counter() - start)
            cfg.output = f"{tmp}/{size}/ray"
            start = time.perf_counter()
            with peak_rss(children=True) as ray_peak:
                init_ray(RayConfig(num_cpus=8))  # a fresh local instance per size: no idle workers carried over
                annotate.run(cfg)
                ray.shutdown()
            ray_rate = n / (time.perf_counter() - start)
            figures.append(Figure("annotate", f"{size} ({n} images) plain loop", loop_rate, "images/s"))
            figures.append(Figure("annotate", f"{size} ({n} images) Ray pipeline", ray_rate, "images/s", loop_rate, "of loop"))
            figures.append(Figure("annotate", f"{size} peak memory, loop", loop_peak[0] / 2**30, "GiB"))
            figures.append(Figure("annotate", f"{size} peak memory, Ray", ray_peak[0] / 2**30, "GiB", loop_peak[0] / 2**30, "of loop"))
        ray_1x = next(f for f in figures if f.case == "1x peak memory, Ray").value
        ray_4x = next(f for f in figures if f.case == "4x peak memory, Ray").value
        figures.append(Figure("annotate", "Ray peak memory 4x input", ray_4x, "GiB", ray_1x, "of 1x"))
    return figures
