"""What the training-set jobs (``build-hand-crops``, ``build-outpaint-set``) share: their config
sections and their Ray Data pipeline, select -> index -> make rows -> (encode) -> write parts.

Sources are annotated datasets mixed by counts with a seed, from the allowed splits only
(``handdiff.data.selection``). Rows in (selected images) = records + errors, checked at the
end; a rerun skips every image already written.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import mlflow
from pydantic import Field

from handdiff import storage
from handdiff.config import InputPath, StrictModel
from handdiff.data.parts import write_part
from handdiff.data.records import ERROR_SCHEMA, error_row, to_table
from handdiff.data.selection import SourceSelection, select_entries
from handdiff.data.set_settings import write_set_settings
from handdiff.provenance import code_version
from pipelines.job import JobConfig, check_error_share
from pipelines.ray_stages import Resources, TaskResources, index_dataset, map_actors, map_tasks, run_pass, timing_line, work_list


class SetSource(StrictModel):
    path: InputPath
    """An annotated dataset: the folder holding its records/ (``<annotate output>/<name>``)."""
    count: int | None = Field(None, ge=1)
    """How many of its images to use (all by default, or when it has fewer)."""
    stratify_by: Literal["gesture"] | None = None
    """Keep this column's distribution when sampling (HaGRID: gesture)."""
    splits: list[str] = Field(default_factory=lambda: ["train"], min_length=1)
    """Only records of these splits are drawn: training never sees test images (HaGRID's test
    split is the benchmark; Re:InterHand's test captures are tagged ``test``)."""


class Precompute(StrictModel):
    base: str
    """The SD 1.5 pipeline whose VAE and text encoder encode the set."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    resources: Resources = Resources(actors=1, batch_size=16, num_gpus=1)


class SetJobConfig(JobConfig):
    """The sections every training-set job has."""

    sources: dict[str, SetSource]
    output: str
    size: int = Field(512, ge=32)
    """Output side, pixels (SD 1.5: 512)."""
    seed: int = 0
    tasks: TaskResources = TaskResources()
    precompute: Precompute | None = None
    """Precompute VAE latents and text embeddings on GPU actors (beyond the paper: faster training)."""
    index_rows_per_file: int = Field(64, ge=1)
    max_error_share: float = Field(0.5, ge=0, le=1)
    """Fail (after writing everything, errors table included) when more than this share of the
    rows are errors: that is a wrong path or setting far more often than bad data."""


@dataclass
class BuiltSet:
    rows_in: int
    counts: dict[str, int]
    report: dict
    timing: dict[str, float]


def build_set(
    cfg: SetJobConfig,
    make_rows: Callable,
    encoder: type | None,
    write_rows: Callable,
    what: str,
    log: logging.Logger,
    required: tuple[str, str] | None = None,
    **make_options,
) -> BuiltSet:
    """Run the set pipeline in the active MLflow run: ``make_rows(batch, **make_options,
    code_version=...)`` as tasks, ``encoder`` (a ``handdiff.models.encoders`` stage) on actors
    when ``cfg.precompute`` is set, ``write_rows(batch, output=...)`` as tasks.

    ``required``: (column, reason): records of the allowed splits whose column is null are not
    drawn; each is an error row with ``reason`` (rows in = their records + errors).
    ``make_options`` are written beside the set as its ``settings.json`` (what the rows were
    made with: the trainers save them with the models)."""
    started = time.monotonic()
    column, reason = required or (None, None)
    sources = {name: SourceSelection(s.path, s.count, s.stratify_by, tuple(s.splits), column) for name, s in cfg.sources.items()}
    entries, report, unusable = select_entries(sources, cfg.seed)
    for name, r in report.items():
        if r.get("short_by"):
            log.warning("source %s has %d images, fewer than the %d asked for: using all", name, r["available"], cfg.sources[name].count)
    todo = work_list(cfg.output, entries, cfg.index_rows_per_file)
    write_part(
        to_table(
            [error_row(u["image_id"], u["dataset"], "select", reason) for u in unusable if u["image_id"] not in todo.done], ERROR_SCHEMA
        ),
        f"{cfg.output}/errors",
    )
    total = todo.total + len(unusable)
    log.info("%d images selected, %d already done, %d to do", total, len(todo.done), todo.pending)

    def pipeline():
        ds = map_tasks(index_dataset(todo.index, cfg.tasks), make_rows, cfg.tasks, **make_options, code_version=code_version())
        if cfg.precompute is not None:
            p = cfg.precompute
            ds = map_actors(ds, encoder, p.resources, base=p.base, device=p.resources.device, dtype=p.dtype)
        return map_tasks(ds, write_rows, cfg.tasks, output=cfg.output)

    counts, timing = run_pass(what, pipeline if todo.index else None, {cfg.output: total}, log, pending=todo.pending, started=started)
    built = BuiltSet(total, counts[cfg.output], report, timing)
    storage.write_text(f"{cfg.output}/selection.json", json.dumps(report, indent=1))
    write_set_settings(cfg.output, make_options)  # the trainers save these with the models
    mlflow.log_metrics({"rows_in": total, **built.counts, "resumed_from": len(todo.done), **timing})
    mlflow.log_dict(report, "selection.json")
    check_error_share(what, cfg.output, built.counts["errors"], total, cfg.max_error_share)
    return built


def print_selection(built: BuiltSet) -> None:
    for name, r in built.report.items():
        print(
            f"  {name:<14} {r['selected']:>7} of {r['available']:>7} images of {'/'.join(r['splits'])} ({r['other_splits']} of other splits left out)"
        )
    print(f"  rows {built.rows_in} = records {built.counts['records']} + errors {built.counts['errors']}; {timing_line(built.timing)}")
