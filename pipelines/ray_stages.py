"""How the Ray Data jobs run their library stages: resources as config sections, actor
pools for model stages, bounded task pools for stateless ones, one block per index file."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from handdiff.config import StrictModel
from handdiff.data.parts import check_conservation, index_rows, read_files, read_index_files, write_index
from handdiff.data.work_rows import ERROR, FILTERED, OK, OUTPUTS, done_ids


class TaskResources(StrictModel):
    """How the stateless stages (read, decode, crop, filter, write) run: Ray tasks, one block
    (one index or part file) per call, so that blocks stream through the stages at the size
    the job's files give them."""

    num_cpus: float = Field(1.0, gt=0)
    concurrency: int = Field(8, ge=1)
    """At most this many tasks of each stateless stage at once: bounds worker processes
    (memory) and the load on storage, whatever the input size."""


class ScalingSection(StrictModel):
    """How a Ray Train job's worker group is placed: ``workers`` x (``cpus_per_worker`` CPUs, a GPU each with ``use_gpu``)."""

    workers: int = Field(2, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)


class Resources(StrictModel):
    """How a model stage runs on the cluster: an actor pool of ``actors``, each taking
    ``batch_size`` images and holding ``num_cpus`` / ``num_gpus`` while the job runs."""

    actors: int = Field(1, ge=1)
    batch_size: int = Field(8, ge=1)
    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    on_device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the model runs: ``auto`` is CUDA when the actor holds GPUs. ``cpu`` with ``num_gpus``
    set schedules on GPU nodes but computes on CPU (a cluster whose GPUs are logical, as in tests)."""

    @property
    def device(self) -> str:
        if self.on_device != "auto":
            return self.on_device
        return "cuda" if self.num_gpus > 0 else "cpu"


def index_dataset(index_files: list[str], tasks: TaskResources):
    """The entries of the index files, one block per file: blocks stream through the later
    stages as they are read (Ray's Parquet reader would merge small files into one block)."""
    return files_dataset(index_files, tasks, read_index_files)


def files_dataset(files: list[str], tasks: TaskResources, reader=read_files):
    """The rows of many small Parquet files, one block per file."""
    import ray

    ds = ray.data.from_items([{"file": f} for f in files], override_num_blocks=max(1, len(files)))
    return map_tasks(ds, reader, tasks, batch_size=1)


def map_tasks(ds, fn, tasks: TaskResources, batch_size: int | None = None, **kwargs: Any):
    """``fn`` over whole blocks (``batch_size=None``). A row count here would make Ray bundle that
    many *input* rows into one task of the fused read: with index files as input rows, a batch
    of 8 merged 8 files into one block and the stages downstream stopped overlapping."""
    import ray

    return ds.map_batches(
        fn,
        fn_kwargs=kwargs,
        batch_format="pyarrow",
        batch_size=batch_size,
        num_cpus=tasks.num_cpus,
        compute=ray.data.TaskPoolStrategy(size=tasks.concurrency),
    )


def map_actors(ds, cls, resources: Resources, **kwargs: Any):
    import ray

    return ds.map_batches(
        cls,
        fn_constructor_kwargs=kwargs,
        batch_format="pyarrow",
        batch_size=resources.batch_size,
        compute=ray.data.ActorPoolStrategy(size=resources.actors),
        num_cpus=resources.num_cpus,
        num_gpus=resources.num_gpus,
    )


@dataclass
class Written:
    """What a streaming run wrote and when. Start-up is the time to the first written batch
    (Ray and actor start, model loads, the pipeline filling); the steady rate counts the rows
    written after that batch over the time after it."""

    counts: Counter
    seconds: float
    first_output_s: float | None = None
    first_rows: int = 0

    def record(self, counts, elapsed_s: float) -> None:
        """Add one written batch's ``counts`` ({ok, error, filtered}: rows), ``elapsed_s`` after the start."""
        self.counts.update(counts)
        if self.first_output_s is None:
            self.first_output_s, self.first_rows = elapsed_s, self.rows

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def steady_rows_per_second(self) -> float:
        if self.first_output_s is None or self.seconds <= self.first_output_s:
            return 0.0
        return (self.rows - self.first_rows) / (self.seconds - self.first_output_s)


def run_to_parts(
    ds, name: str, log: logging.Logger, total: int | None = None, every_s: float = 30.0, started: float | None = None
) -> Written:
    """Execute a pipeline that ends in a part writer (streaming); returns what this run wrote,
    its times counted from ``started`` (``time.monotonic()``; default: now). Logs a progress line
    every ``every_s`` seconds (``total``: the rows to expect), Ray's pending demands whenever
    nothing was written for ``waits.REPORT_WAITS_AFTER_S`` (``pipelines.waits.WaitReporter``), and
    Ray Data's per-stage statistics to the log file."""
    from pipelines import waits as wait_reports

    written = Written(Counter(), 0.0)
    start = started if started is not None else time.monotonic()
    last = time.monotonic()
    after = wait_reports.REPORT_WAITS_AFTER_S
    with wait_reports.WaitReporter(name, after, after) as waits:
        for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            waits.progress()
            written.record({k: sum(batch.column(k).to_pylist()) for k in (OK, ERROR, FILTERED)}, time.monotonic() - start)
            if time.monotonic() - last >= every_s:
                last = time.monotonic()
                log.info(
                    "%s: %d%s rows written (%d records, %d errors, %d filtered)",
                    name,
                    written.rows,
                    f" of {total}" if total else "",
                    written.counts[OK],
                    written.counts[ERROR],
                    written.counts[FILTERED],
                )
    written.seconds = time.monotonic() - start
    c = written.counts
    log.info("%s: this run wrote %d records, %d errors, %d filtered", name, c[OK], c[ERROR], c[FILTERED])
    logging.getLogger("raydata.stats").info("%s: Ray Data stages\n%s", name, ds.stats())
    return written


@dataclass
class WorkList:
    """Where a resumable job's output stands: the ids it already holds (``done``), how many
    entries there are in all (``total``), and the index files of those still to do (``index``,
    ``pending`` rows)."""

    done: set[str]
    total: int
    index: list[str]
    pending: int


def work_list(output: str, entries, rows_per_file: int, done: set[str] | None = None) -> WorkList:
    """Write the work list of ``output``: the ``entries`` (dicts with an ``image_id``) it does not
    hold yet (``done``: its ids, when the caller has read them already), as index files under
    ``<output>/_index``."""
    done = done_ids(output) if done is None else done
    total, index = write_index(entries, f"{output}/_index", done, rows_per_file)
    return WorkList(done, total, index, index_rows(index))


def run_pass(
    name: str, pipeline: Callable[[], Any] | None, rows_in: Mapping[str, int], log: logging.Logger, *, pending: int, started: float
) -> tuple[dict[str, dict[str, int]], dict[str, float]]:
    """The one way every resumable data job runs (annotate, the set jobs, generate, score), once it
    has written its work list: ``pipeline()`` (None when nothing is pending) streamed to its part
    writer (``run_to_parts``), then every output's rows checked (``rows_in``: output -> the rows it
    must hold, records + errors + filtered). Returns per output its counts, and the timing every
    data job logs: ``seconds`` and ``images_per_second`` of the whole run since ``started``
    (``time.monotonic()``: work lists, pipeline, checks), ``startup_seconds`` (to the first
    written batch) and ``steady_images_per_second`` after it."""
    written = run_to_parts(pipeline(), name, log, total=pending, started=started) if pipeline is not None else None
    counts = {output: check_conservation(output, OUTPUTS, rows) for output, rows in rows_in.items()}
    seconds = time.monotonic() - started
    timing = {
        "seconds": seconds,
        "images_per_second": pending / seconds if pending and seconds else 0.0,
        "startup_seconds": 0.0,
        "steady_images_per_second": 0.0,
    }
    if written is not None and written.first_output_s is not None:
        timing.update(startup_seconds=written.first_output_s, steady_images_per_second=written.steady_rows_per_second)
    return counts, timing


def timing_line(timing: Mapping[str, float]) -> str:
    """The console's line for ``run_pass``'s timing."""
    return (
        f"{timing['images_per_second']:.2f} images/s in {timing['seconds']:.0f} s: first part written after "
        f"{timing['startup_seconds']:.0f} s, then {timing['steady_images_per_second']:.2f} images/s"
    )
