"""Annotation throughput and where Ray's overhead goes: the Ray Data pipeline against a plain
single-process loop over the same images, stage code, models and model batches (the baseline),
at 1x, 4x and 16x input, with the peak memory of each side.

Both sides get the whole machine (the loop one process with torch's default threads, Ray a
local instance whose stages are separate processes) and are timed over the same windows:
- end to end: the loop from building its models, Ray from starting a fresh local instance,
  both until the last part is written (index, stages, parts, the conservation check);
- steady state: the rows written after the first written batch, over the time after it.
Peak memory is the proportional set size (shared pages once) of the whole process tree.

At the largest size, the overhead breakdown: starting the local instance, each actor's start
(from Ray's own task events: when its ``__init__`` ran and how long, imports and model load in
it), what those imports cost alone in a fresh process, the time to the first written batch,
each stage's compute (Ray's task events vs the loop's timers), moving blocks (Ray's argument
deserialisation and output storing), and the scheduling floor: the same pipeline over the same
blocks with pass-through stages, per block.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa

from benchmarks.report import Figure
from devtools.processes import peak_pss
from handdiff.annotation.stages import HandMasks, LlavaCaptions, WholeBodyKeypoints, load_images, to_records, write_parts
from handdiff.assets.sample_data import write_hagrid
from handdiff.assets.tiny_zoo import build_tiny_zoo
from handdiff.data.parts import INDEX_SCHEMA
from handdiff.data.readers import open_reader
from pipelines import annotate
from pipelines.demo_configs import demo_config
from pipelines.job import RayConfig, TrackingConfig, init_ray, setup_logging
from pipelines.ray_stages import Resources, TaskResources, Written, index_dataset, map_actors, map_tasks, run_to_parts

SIZES = {"1x": 8, "4x": 32, "16x": 128}
"""HaGRID train images per gesture (4 gestures: 32, 128 and 512 images), plus its 9 bad entries."""
BATCH = 8
"""Images per model call, on both sides."""
ROWS_PER_BLOCK = 16
"""Ray: entries per index file, the block that streams through the stages."""
MODEL_STAGES = {"keypoints": "WholeBodyKeypoints", "masks": "HandMasks", "captions": "LlavaCaptions"}
IMPORTS = {  # what each stage's constructor imports, timed alone in a fresh process
    "keypoints": "import handdiff.annotation.wholebody, mediapipe.python.solutions.holistic",
    "masks": "import handdiff.annotation.sam_masker, handdiff.models.sam",
    "captions": "import handdiff.annotation.captions; from transformers import AutoProcessor, LlavaForConditionalGeneration",
    "task stages": "import handdiff.annotation.stages, handdiff.data.parts",
}
log = logging.getLogger("handdiff.bench")


@dataclass
class Run:
    """One side's run: rows written, seconds from its start to the end and to the first written
    batch, the steady rate after that batch (rows/s), and (the loop) seconds per stage."""

    rows: int = 0
    seconds: float = 0.0
    first_output_s: float = 0.0
    steady: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def settings(tmp: str, size: str) -> annotate.Config:
    """The demo's annotate settings (tiny zoo, CPU actors, one per model stage) on this size's HaGRID."""
    cfg = demo_config("annotate", tmp, TrackingConfig(run_name=f"bench-{size}", tracking_uri=f"sqlite:///{tmp}/mlflow.db"))
    cfg.datasets = {
        "hagrid": {
            "source": {
                "dataset": "hagrid",
                "images": f"{tmp}/{size}/hagrid/hagrid_dataset",
                "annotations": f"{tmp}/{size}/hagrid/annotations",
            }
        }
    }
    cfg.output, cfg.index_rows_per_file = f"{tmp}/{size}/ray", ROWS_PER_BLOCK
    for stage in MODEL_STAGES:
        getattr(cfg, stage).resources.batch_size = BATCH
    return annotate.Config.model_validate(cfg.model_dump())


def plain_loop(cfg: annotate.Config, out: str) -> Run:
    """The baseline: every stage in this process, one batch after another, writing the same parts."""
    spec, run, start = cfg.datasets["hagrid"], Run(), time.perf_counter()

    def timed(stage: str, fn, *args):
        began = time.perf_counter()
        result = fn(*args)
        run.stage_seconds[stage] += time.perf_counter() - began
        return result

    reader_options, plan = spec.source.model_dump(), replace(annotate.plan(cfg, "hagrid", spec), output=out)
    versions = annotate.annotators(cfg, spec)
    keypoints = timed("load keypoints", WholeBodyKeypoints)
    masks = timed("load masks", HandMasks, cfg.masks.sam, cfg.masks.arch)
    c = cfg.captions
    captions = timed("load captions", lambda: LlavaCaptions(c.captioner, c.instruction, c.max_new_tokens, dtype=c.dtype))
    entries = [{"image_id": e["image_id"], "entry": json.dumps(e)} for e in open_reader(**reader_options).entries()]
    written = Written(Counter(), 0.0)  # the same bookkeeping as the job's run_to_parts
    for first in range(0, len(entries), BATCH):
        table = pa.Table.from_pylist(entries[first : first + BATCH], schema=INDEX_SCHEMA)
        table = timed("read+decode", lambda t: load_images(to_records(t, reader_options, versions, "bench", plan)), table)
        table = timed("keypoints", keypoints, table)
        table = timed("masks", masks, table)
        table = timed("captions", captions, table)
        counts = timed("write", write_parts, table)
        written.record({k: sum(counts.column(k).to_pylist()) for k in counts.column_names}, time.perf_counter() - start)
    written.seconds = time.perf_counter() - start
    run.rows, run.seconds, run.first_output_s, run.steady = (
        written.rows,
        written.seconds,
        written.first_output_s,
        written.steady_rows_per_second,
    )
    return run


def ray_pipeline(cfg: annotate.Config) -> tuple[Run, float, float]:
    """The job's own ``annotate_datasets`` on a fresh local instance: (run, ray.init seconds, the
    wall-clock time the pipeline started, for the task events)."""
    start = time.perf_counter()
    init_ray(RayConfig(num_cpus=8))
    init_s, pipeline_start = time.perf_counter() - start, time.time()
    summary, timing = annotate.annotate_datasets(cfg)
    counts = summary["hagrid"]
    run = Run(
        rows=counts["records"] + counts["errors"] + counts["filtered"],
        seconds=time.perf_counter() - start,
        first_output_s=init_s + timing["startup_seconds"],
        steady=timing["steady_images_per_second"],
    )
    return run, init_s, pipeline_start


def task_events(pipeline_start: float) -> dict:
    """From Ray's task events (``ray.timeline``): per model stage when its actor's ``__init__``
    began (s after the pipeline started) and how long it ran; per stage the summed compute of
    its calls; the summed time moving blocks in and out of tasks."""
    import ray

    out = {"actors": {}, "compute": defaultdict(float), "transfer": 0.0}
    for event in ray.timeline():
        category, seconds = event.get("cat", ""), event.get("dur", 0) / 1e6
        if category in ("task:deserialize_arguments", "task:store_outputs"):
            out["transfer"] += seconds
        for stage, cls in MODEL_STAGES.items():
            if category == f"task::MapWorker(MapBatches({cls})).__init__":
                out["actors"][stage] = (event["ts"] / 1e6 - pipeline_start, seconds)
            elif category == f"task::MapWorker(MapBatches({cls})).submit":
                out["compute"][stage] += seconds
    return out


class PassThrough:
    """A model stage's place in the scheduling-floor pipeline: nothing to load, nothing to do."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        return batch


def pass_through(batch: pa.Table) -> pa.Table:
    return batch


def scheduling_floor(cfg: annotate.Config) -> tuple[float, int]:
    """(seconds per block, blocks) of the annotate pipeline's shape (read task, three actor pools,
    write task) over the same index files with pass-through stages, at steady state."""
    index = sorted(str(p) for p in Path(f"{cfg.output}/hagrid/_index").glob("index-*.parquet"))
    tasks = TaskResources(num_cpus=cfg.tasks.num_cpus, concurrency=cfg.tasks.concurrency)
    ds = map_tasks(index_dataset(index, tasks), pass_through, tasks)
    for stage in MODEL_STAGES:
        ds = map_actors(ds, PassThrough, Resources(**getattr(cfg, stage).resources.model_dump()))
    ds = map_tasks(ds, lambda b: pa.table({"ok": [b.num_rows], "error": [0], "filtered": [0]}), tasks)
    written = run_to_parts(ds, "scheduling floor", log)
    blocks = len(index)
    return (written.seconds - written.first_output_s) / max(1, blocks - 1), blocks


@contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """File descriptor 2 (C++ libraries write there directly) appended to ``path`` while inside."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as target:
        os.dup2(target.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_seconds(statement: str) -> float:
    """``statement`` timed in a fresh Python process (after Python itself starts)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
    return float(out.stdout.strip().splitlines()[-1])


def run() -> list[Figure]:
    import ray

    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        log_file = setup_logging("bench-annotate")  # Ray's and the models' chatter to a log file, as in the jobs
        build_tiny_zoo(f"{tmp}/zoo")
        Path(f"{tmp}/sample-data").mkdir()  # demo_config reads the zoo and the sample-data layout
        for size, per_gesture in SIZES.items():
            write_hagrid(f"{tmp}/{size}/hagrid", per_gesture={"train": per_gesture})
            cfg = settings(tmp, size)
            with peak_pss(os.getpid()) as loop_peak, stderr_to(log_file):  # Mediapipe's C++ log lines, as Ray's workers' go to their logs
                loop = plain_loop(cfg, f"{tmp}/{size}/loop")
            with peak_pss(os.getpid()) as ray_peak:
                ray_run, init_s, pipeline_start = ray_pipeline(cfg)
            n, largest = f"{size} ({ray_run.rows} images)", size == list(SIZES)[-1]
            figures += [
                Figure("annotate", f"{n} end to end, plain loop", loop.rows / loop.seconds, "images/s"),
                Figure(
                    "annotate",
                    f"{n} end to end, Ray from ray.init",
                    ray_run.rows / ray_run.seconds,
                    "images/s",
                    loop.rows / loop.seconds,
                    "of loop",
                ),
                Figure("annotate", f"{n} peak memory (PSS), plain loop", loop_peak[0] / 2**30, "GiB"),
                Figure(
                    "annotate", f"{n} peak memory (PSS), Ray, all processes", ray_peak[0] / 2**30, "GiB", loop_peak[0] / 2**30, "of loop"
                ),
            ]
            if not largest:  # a few blocks drain at once once the actors are up: no steady state to speak of
                ray.shutdown()
                continue
            figures += [
                Figure("annotate", f"{n} steady state, plain loop", loop.steady, "images/s"),
                Figure("annotate", f"{n} steady state, Ray", ray_run.steady, "images/s", loop.steady, "of loop"),
            ]
            events = task_events(pipeline_start)
            floor, blocks = scheduling_floor(cfg)
            ray.shutdown()
            figures += breakdown(size, loop, ray_run, init_s, events, floor, blocks)
    return figures


def breakdown(size: str, loop: Run, ray_run: Run, init_s: float, events: dict, floor: float, blocks: int) -> list[Figure]:
    """Where the Ray side's time goes, beside what the loop spends on the same thing."""
    suite = f"overhead {size}"
    figures = [Figure(suite, "Ray: start a local instance (ray.init)", init_s, "s")]
    for stage in MODEL_STAGES:
        began, init = events["actors"].get(stage, (float("nan"), float("nan")))
        imports = import_seconds(IMPORTS[stage])
        figures += [
            Figure(suite, f"Ray: {stage} actor's __init__ began, after pipeline start", began, "s"),
            Figure(
                suite,
                f"Ray: {stage} actor's __init__ (imports + model load)",
                init,
                "s",
                imports + loop.stage_seconds[f"load {stage}"],
                "of alone",
            ),
            Figure(suite, f"  {stage} imports alone, fresh process", imports, "s"),
            Figure(suite, f"  {stage} model load, loop (imports done)", loop.stage_seconds[f"load {stage}"], "s"),
        ]
    figures.append(Figure(suite, "task stages' imports alone, fresh process", import_seconds(IMPORTS["task stages"]), "s"))
    figures.append(
        Figure(suite, "time to the first written batch, Ray (from ray.init)", ray_run.first_output_s, "s", loop.first_output_s, "of loop")
    )
    for stage in MODEL_STAGES:
        figures.append(Figure(suite, f"{stage} compute, all batches", events["compute"][stage], "s", loop.stage_seconds[stage], "of loop"))
    figures.append(Figure(suite, "Ray: moving blocks (task argument reads + output stores)", events["transfer"], "s"))
    figures.append(
        Figure(
            suite,
            f"Ray: scheduling floor, pass-through stages ({blocks} blocks)",
            floor * 1000,
            "ms/block",
            1000 * loop.seconds * ROWS_PER_BLOCK / loop.rows,
            "of loop's block",
        )
    )
    return figures
