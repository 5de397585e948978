"""Annotate datasets on Ray Data: whole-body keypoints, hand and person masks, captions.

For every image of every configured dataset: Mediapipe Holistic keypoints mapped to
COCO-WholeBody 133 (or the dataset's own, for InterHand2.6M / Re:InterHand), hand
boxes, SAM hand masks (5x5-dilated, COCO RLE) prompted by each hand's keypoints and
box, a SAM person mask, the person count, and a caption (LLaVA with one fixed
instruction, or a per-sequence caption table). LAION-Human keeps only images with
exactly one person and enough hand mask.

Output per dataset, under ``<output>/<name>/``: ``records/`` (ANNOTATION_SCHEMA),
``errors/`` and ``filtered/`` (ERROR_SCHEMA), Parquet parts. Rows in = records +
errors + filtered, checked at the end. A rerun skips what is written and never
duplicates a row, so a crashed job is resumed by running it again.

    handdiff annotate --config pipelines/configs/annotate_demo.yaml
    ray job submit --working-dir . -- python -m pipelines.annotate --config pipelines/configs/annotate_hagrid.yaml
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Literal

import mlflow
import numpy as np
from pydantic import Field, model_validator

from handdiff import storage
from handdiff.annotation.captions import DEFAULT_INSTRUCTION
from handdiff.annotation.stages import (
    HandMasks,
    LlavaCaptions,
    Plan,
    WholeBodyKeypoints,
    filter_hand_pixels,
    filter_people,
    load_images,
    prefilter_people,
    table_captions,
    to_records,
    write_parts,
)
from handdiff.annotation.wholebody import holistic_model_id
from handdiff.config import ConfigError, InputPath, StrictModel
from handdiff.data.keypoints import MIN_VISIBILITY
from handdiff.data.parts import read_parts
from handdiff.data.readers import open_reader
from handdiff.data.records import ANNOTATION_SCHEMA
from handdiff.data.selection import Draw, EntrySelection, selection_settings
from handdiff.models.sam import SamArch
from handdiff.provenance import code_version
from handdiff.viz import annotated_tile, contact_sheet
from pipelines.job import JobConfig, TrackingConfig, check_error_share, job_run, run_job
from pipelines.ray_stages import Resources, TaskResources, index_dataset, map_actors, map_tasks, run_pass, timing_line, work_list
from pipelines.sources import Source

log = logging.getLogger("handdiff.annotate")
HAND_ONLY = ("interhand26m", "reinterhand")


class KeypointsStage(StrictModel):
    min_detection_confidence: float = 0.5
    min_visibility: float = Field(MIN_VISIBILITY, gt=0, le=1)
    """A body or foot landmark is present only when its visibility reaches this (and it lies inside
    the image); Mediapipe's own drawing utilities use 0.5. Others score 0 and are (0, 0)."""
    min_hand_points: int = Field(5, ge=1, le=21)
    """A hand counts when at least this many of its 21 points are present."""
    dataset_hands: bool = True
    """Take a hand Mediapipe misses from the dataset's own landmarks (HaGRID), if any."""
    resources: Resources = Resources(actors=2, batch_size=8)


class MasksStage(StrictModel):
    sam: str
    """SAM checkpoint: a path, s3:// key or hf://<repo>/<file> (e.g. sam_vit_h_4b8939.pth)."""
    arch: SamArch = "vit_h"
    dilation: int = 5
    box_margin: float = 0.1
    """Prompt boxes grow by this fraction of their longer side."""
    person_masks: bool = True
    resources: Resources = Resources(actors=1, batch_size=4, num_gpus=1)


class CaptionsStage(StrictModel):
    captioner: str
    """LLaVA: a path, s3:// prefix or hub id (e.g. llava-hf/llava-1.5-7b-hf)."""
    instruction: str = DEFAULT_INSTRUCTION
    max_new_tokens: int = 60
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    resources: Resources = Resources(actors=1, batch_size=8, num_gpus=1)


class FilterStage(StrictModel):
    people: int = 1
    min_hand_pixels: int = 2500


class DrawSection(StrictModel):
    """One draw a set job makes from this dataset (the same values as that job's source)."""

    count: int = Field(ge=1)
    """Images the set needs, e.g. build-hand-crops' ``sources.hagrid.count``."""
    splits: list[str] | None = ["train"]
    """The set's ``splits`` (None: any split, e.g. LAION-Human's one)."""
    stratify_by: Literal["gesture"] | None = None
    seed: int = 0


class SelectionSection(StrictModel):
    """Annotate only what the sets will use: each draw's images, drawn from the raw entries by
    ``handdiff.data.selection`` before any model runs, instead of the whole dataset."""

    draws: list[DrawSection] = Field(min_length=1)
    oversample: float = Field(1.3, ge=1)
    """The first round annotates ``count x oversample`` images per draw: room for the rows
    annotation turns into errors or filters out."""
    max_rounds: int = Field(4, ge=1)
    """A draw still short of its count after a round draws ``shortfall x oversample`` more from
    the entries not drawn yet, up to this many rounds (then the job says how short it is)."""

    def draws_(self) -> list[Draw]:
        return [Draw(d.count, tuple(d.splits) if d.splits else None, d.stratify_by, d.seed) for d in self.draws]


class DatasetSpec(StrictModel):
    """One dataset to annotate. Unset choices take the dataset's defaults: its own
    keypoints and a caption table for InterHand2.6M / Re:InterHand, Mediapipe and
    LLaVA otherwise; the people-and-hands filter for LAION-Human only."""

    source: Source
    keypoints: Literal["mediapipe", "dataset"] | None = None
    captions: Literal["llava", "table"] | None = None
    caption_table: InputPath | None = None
    """CSV (sequence,caption) or JSON {sequence: caption}, for captions: table."""
    filter: bool | None = None
    select: SelectionSection | None = None
    """Annotate a selection (what the set jobs will draw, oversampled) instead of every image."""

    @model_validator(mode="after")
    def _defaults(self) -> DatasetSpec:
        hands_only = self.source.dataset in HAND_ONLY
        if self.keypoints is None:
            self.keypoints = "dataset" if hands_only else "mediapipe"
        if self.captions is None:
            self.captions = "table" if hands_only else "llava"
        if self.filter is None:
            self.filter = self.source.dataset == "laion_human"
        if self.captions == "table" and not self.caption_table:
            raise ValueError("captions: table needs caption_table")
        return self


class Config(JobConfig):
    job: Literal["annotate"] = "annotate"
    tracking: TrackingConfig = TrackingConfig(run_name="annotate")
    output: str
    """Each dataset is written under <output>/<name>/."""
    datasets: dict[str, DatasetSpec]
    tasks: TaskResources = TaskResources()
    keypoints: KeypointsStage = KeypointsStage()
    masks: MasksStage
    captions: CaptionsStage
    filter: FilterStage = FilterStage()
    max_error_share: float = Field(0.5, ge=0, le=1)
    """Fail (after writing everything, errors tables included) when more than this share of a
    dataset's rows are errors: that is a wrong path or layout far more often than bad data."""
    index_rows_per_file: int = 64
    """Entries per index file: one block, the unit that streams through the stages and is
    spread over the actors. About the model stages' batch size keeps every actor busy."""
    contact_sheet_images: int = 12

    def preflight(self) -> None:
        """A dataset whose output holds a selection drawn with other settings is refused: resuming
        it would mix two draws (annotate to a new output, or delete that one)."""
        for name, spec in self.datasets.items():
            stored = stored_selection(self, name)
            if (
                spec.select is not None
                and stored is not None
                and stored["settings"] != selection_settings(spec.select.draws_(), spec.select.oversample)
            ):
                raise ConfigError(
                    f"datasets.{name}.select: {storage.join(self.output, name, SELECTION_FILE)} was drawn with other settings "
                    f"({stored['settings']}): annotate to a new output, or delete that one"
                )


def annotators(cfg: Config, spec: DatasetSpec) -> dict:
    """Model ids and settings of every annotator of one dataset, written beside each row."""
    import mediapipe

    out = {"reader": spec.source.dataset}
    if spec.keypoints == "mediapipe":
        k = cfg.keypoints
        out["keypoints"] = holistic_model_id(mediapipe.__version__, 1, k.min_detection_confidence, k.min_visibility)
        out["person_count"] = f"mediapipe-face-detection {mediapipe.__version__} full-range"
    else:
        out["keypoints"] = "dataset"
    out["masks"] = f"sam {cfg.masks.arch} {cfg.masks.sam} dilation={cfg.masks.dilation} margin={cfg.masks.box_margin}"
    if spec.captions == "llava":
        out["captions"] = f"llava {cfg.captions.captioner} max_new_tokens={cfg.captions.max_new_tokens}"
        out["instruction"] = cfg.captions.instruction
    else:
        out["captions"] = f"table {spec.caption_table}"
    return out


def plan(cfg: Config, name: str, spec: DatasetSpec) -> Plan:
    """What the stages do with the rows of dataset ``name`` (each row carries it)."""
    return Plan(
        output=storage.join(cfg.output, name),
        keypoints=spec.keypoints,
        captions=spec.captions,
        caption_table=spec.caption_table,
        person_mask=cfg.masks.person_masks and spec.source.dataset not in HAND_ONLY,
        filter=spec.filter,
    )


def build_pipeline(cfg: Config, work: dict[str, list[str]]):
    """One Ray Data pipeline for every dataset with entries to annotate (``work``: name -> index
    files), from index entries to written parts (lazy). Each dataset reads through its own
    reader; from the keypoints on, the datasets share one actor pool per model, so a job with
    four datasets starts three actor pools, not twelve."""
    branches = []
    for name, index in work.items():
        spec = cfg.datasets[name]
        ds = index_dataset(index, cfg.tasks)
        ds = map_tasks(
            ds,
            to_records,
            cfg.tasks,
            reader_options=spec.source.model_dump(),
            annotators=annotators(cfg, spec),
            code_version=code_version(),
            plan=plan(cfg, name, spec),
        )
        branches.append(map_tasks(ds, load_images, cfg.tasks))
    ds = branches[0].union(*branches[1:]) if len(branches) > 1 else branches[0]
    specs = [cfg.datasets[name] for name in work]
    filtered = any(s.filter for s in specs)  # LAION-Human's filter, each step before the models it spares
    if filtered:  # who the dataset's own poses count as too many people never reaches a model
        ds = map_tasks(ds, prefilter_people, cfg.tasks, people=cfg.filter.people)
    k = cfg.keypoints
    ds = map_actors(
        ds,
        WholeBodyKeypoints,
        k.resources,
        dataset_hands=k.dataset_hands,
        min_hand_points=k.min_hand_points,
        min_detection_confidence=k.min_detection_confidence,
        min_visibility=k.min_visibility,
        mediapipe=any(s.keypoints == "mediapipe" for s in specs),
    )
    if filtered:  # who is not one person is not sent to SAM
        ds = map_tasks(ds, filter_people, cfg.tasks, people=cfg.filter.people)
    m = cfg.masks
    ds = map_actors(
        ds, HandMasks, m.resources, sam_location=m.sam, arch=m.arch, device=m.resources.device, dilation=m.dilation, box_margin=m.box_margin
    )
    if filtered:  # nor is who has too few hand pixels captioned
        ds = map_tasks(ds, filter_hand_pixels, cfg.tasks, min_hand_pixels=cfg.filter.min_hand_pixels)
    if any(s.captions == "llava" for s in specs):
        c = cfg.captions
        ds = map_actors(
            ds,
            LlavaCaptions,
            c.resources,
            location=c.captioner,
            instruction=c.instruction,
            max_new_tokens=c.max_new_tokens,
            device=c.resources.device,
            dtype=c.dtype,
        )
    if any(s.captions == "table" for s in specs):
        ds = map_tasks(ds, table_captions, cfg.tasks)
    return map_tasks(ds, write_parts, cfg.tasks)


def sample_sheet(out: str, n: int) -> np.ndarray | None:
    """A contact sheet of up to ``n`` annotated images of one dataset."""
    records = read_parts(f"{out}/records", schema=ANNOTATION_SCHEMA).slice(0, n).to_pylist()
    if not records:
        return None
    return contact_sheet([annotated_tile(r) for r in records], columns=6, cell=192, labels=[r["image_id"].split("/")[-1] for r in records])


SELECTION_FILE = "selection.json"


def stored_selection(cfg: Config, name: str) -> dict | None:
    uri = storage.join(cfg.output, name, SELECTION_FILE)
    return json.loads(storage.read_text(uri)) if storage.exists(uri) else None


def dataset_entries(cfg: Config, name: str, spec: DatasetSpec) -> tuple[list[dict], EntrySelection | None]:
    """What ``annotate`` annotates of one dataset: every entry, or its selection (drawn, or the one
    its output holds, resumed)."""
    entries = list(open_reader(**spec.source.model_dump()).entries())
    if spec.select is None:
        return entries, None
    stored = stored_selection(cfg, name)
    selection = EntrySelection(entries, spec.select.draws_(), spec.select.oversample, stored["selected"] if stored else None)
    if stored is None:
        save_selection(cfg, name, selection)
    return selection.entries(), selection


def save_selection(cfg: Config, name: str, selection: EntrySelection) -> None:
    uri = storage.join(cfg.output, name, SELECTION_FILE)
    storage.write_text(uri, json.dumps({"settings": selection.settings(), "selected": selection.selected}, indent=0))


def usable_records(cfg: Config, name: str, selection: EntrySelection) -> list[int]:
    """Per draw, the annotated records of its splits (what the set job will draw from)."""
    splits = read_parts(storage.join(cfg.output, name, "records"), ["split"], ANNOTATION_SCHEMA).column("split").to_pylist()
    return [sum(draw.takes(split) for split in splits) for draw in selection.draws]


def annotate_datasets(cfg: Config) -> tuple[dict[str, dict], dict[str, float]]:
    """Annotate every configured dataset in one pipeline, resuming what is written; a dataset with
    a selection gets more rounds while a draw falls short. Returns per dataset its counts (rows in,
    resumed, records, errors, filtered; selected, rounds and shortfalls for a selection), and the
    job's timing: the images annotated per second of the whole time (indexes, pipelines, checks),
    the start-up (time to the first written batch) and the steady rate after it."""
    started = time.monotonic()
    work = {name: dataset_entries(cfg, name, spec) for name, spec in cfg.datasets.items()}
    rounds = max([spec.select.max_rounds for spec in cfg.datasets.values() if spec.select] or [1])
    summary, first, annotated = {}, {}, 0
    for round_number in range(1, rounds + 1):
        _, timing = annotate_pass(cfg, {name: entries for name, (entries, _) in work.items()}, started, summary)
        annotated += timing.pop("pending")
        first = first or timing  # the start-up and steady rate: the first round's
        short = {}
        for name, (_, selection) in work.items():
            if selection is None:
                continue
            usable = usable_records(cfg, name, selection)
            summary[name].update(selected=len(selection.selected), rounds=round_number)
            summary[name].update({f"draw{i}.usable": have for i, have in enumerate(usable)})
            limit = cfg.datasets[name].select.max_rounds
            added = selection.more(usable) if round_number < limit else {}
            if any(added.values()):
                save_selection(cfg, name, selection)
                short[name] = added
                work[name] = (selection.entries(), selection)
            for i, (draw, have) in enumerate(zip(selection.draws, usable, strict=True)):
                if have < draw.count and not added.get(i):
                    summary[name][f"draw{i}.short_by"] = draw.count - have
                    why = "its splits have no entries left" if round_number < limit else f"after {limit} rounds (select.max_rounds)"
                    log.warning("%s: draw %d (%s) has %d of its %d records: %s", name, i, draw.splits or "any split", have, draw.count, why)
        if not short:
            break
        log.info("round %d: %s", round_number + 1, "; ".join(f"{n}: {sum(a.values())} more drawn" for n, a in short.items()))
    seconds = time.monotonic() - started
    return summary, {**first, "seconds": seconds, "images_per_second": annotated / seconds if annotated else 0.0}


def annotate_pass(cfg: Config, entries: dict[str, list[dict]], started: float, summary: dict) -> tuple[dict, dict]:
    """One pipeline over what every dataset has not written yet of ``entries``; updates ``summary``."""
    work, pending = {}, 0
    for name, items in entries.items():
        todo = work_list(storage.join(cfg.output, name), items, cfg.index_rows_per_file)
        log.info("%s: %d images, %d already written, %d to annotate", name, todo.total, len(todo.done), todo.pending)
        summary.setdefault(name, {"resumed_from": len(todo.done)})["rows_in"] = todo.total
        pending += todo.pending
        if todo.index:
            work[name] = todo.index
    pipeline = (lambda: build_pipeline(cfg, work)) if work else None
    rows_in = {storage.join(cfg.output, name): summary[name]["rows_in"] for name in cfg.datasets}
    counts, timing = run_pass("annotate", pipeline, rows_in, log, pending=pending, started=started)
    for name in cfg.datasets:
        summary[name].update(counts[storage.join(cfg.output, name)])
    return counts, {**timing, "pending": pending}


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="annotate", doc=__doc__)


def run(cfg: Config) -> int:
    """Annotate every configured dataset inside one MLflow run; prints a summary."""
    with job_run(cfg) as active:
        summary, timing = annotate_datasets(cfg)
        mlflow.log_metrics(timing)
        for name, spec in cfg.datasets.items():
            mlflow.log_metrics({f"{name}.{k}": float(v) for k, v in summary[name].items()})
            mlflow.log_dict(annotators(cfg, spec), f"annotators/{name}.json")
            sheet = sample_sheet(storage.join(cfg.output, name), cfg.contact_sheet_images)
            if sheet is not None:
                mlflow.log_image(sheet, f"contact_sheets/{name}.png")
        mlflow.log_dict({"datasets": summary, "timing": timing}, "summary.json")
        for name, counts in summary.items():
            check_error_share(name, storage.join(cfg.output, name), counts["errors"], counts["rows_in"], cfg.max_error_share)
    print(f"\nannotated under {cfg.output} (MLflow run {active.info.run_id}, experiment {cfg.experiment!r})")
    print(f"  {'dataset':<14}{'rows in':>8}{'records':>9}{'errors':>8}{'filtered':>9}")
    for name, s in summary.items():
        print(f"  {name:<14}{s['rows_in']:>8}{s['records']:>9}{s['errors']:>8}{s['filtered']:>9}")
    for name, s in summary.items():
        if "selected" in s:
            usable = ", ".join(f"{s[f'draw{i}.usable']} of {d.count}" for i, d in enumerate(cfg.datasets[name].select.draws))
            print(f"  {name}: a selection of {s['selected']} images in {s['rounds']} round(s); records per draw: {usable}")
    print(f"  {timing_line(timing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
