"""Which images a set is built from: sources mixed by counts, sampled without replacement with a
seed, only from the splits a source allows (training sets: ``train``; the benchmark: HaGRID
``test``), optionally keeping a column's distribution (HaGRID's gestures, by largest-remainder
quotas). Used by every set builder, so that each draws the same way, and by ``annotate``
(``EntrySelection``), which draws the same way from the raw entries so that only what the sets
will use is annotated.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass

import numpy as np

from handdiff.data.parts import part_uris, read_part
from handdiff.data.records import is_error


@dataclass(frozen=True)
class SourceSelection:
    path: str
    """An annotated dataset: the folder holding its ``records/``."""
    count: int | None = None
    """How many images to draw (all when None or when it has fewer)."""
    stratify_by: str | None = None
    """A column whose distribution the sample keeps (e.g. ``gesture``)."""
    splits: tuple[str, ...] = ("train",)
    required: str | None = None
    """A column that must not be null for a record to be drawn (e.g. ``person_box``: a body)."""


def select_entries(sources: dict[str, SourceSelection], seed: int) -> tuple[list[dict], dict, list[dict]]:
    """The index entries (``image_id``, ``part``, ``dataset``) of every selected image, a report
    per source (available / selected counts, rows of other splits left out and, when stratified,
    the shares available and selected), and the records of the allowed splits that were not
    drawn for lacking their source's ``required`` column (``image_id``, ``dataset``). Reads only
    a few columns of each part."""
    entries, report, unusable = [], {}, []
    for name, source in sources.items():
        parts = part_uris(f"{source.path}/records")
        if not parts:
            raise FileNotFoundError(f"source {name}: no annotated records under {source.path}/records")
        columns = [
            "image_id",
            "dataset",
            "split",
            *([source.stratify_by] if source.stratify_by else []),
            *([source.required] if source.required else []),
        ]
        every = [{**r, "part": part} for part in parts for r in read_part(part, columns).to_pylist()]
        rows = [r for r in every if r["split"] in source.splits]
        if source.required:
            unusable += [{"image_id": r["image_id"], "dataset": r["dataset"]} for r in rows if r[source.required] is None]
            rows = [r for r in rows if r[source.required] is not None]
        ids = [r["image_id"] for r in rows]
        strata = [r[source.stratify_by] if source.stratify_by else None for r in rows]
        chosen = set(stratified_sample(ids, strata, source.count or len(ids), seed))
        report[name] = {
            "available": len(ids),
            "selected": len(chosen),
            "splits": list(source.splits),
            "other_splits": len(every) - len(rows),
        }
        if source.count and source.count > len(ids):
            report[name]["short_by"] = source.count - len(ids)
        if source.stratify_by:
            report[name]["share_available"] = share(strata)
            report[name]["share_selected"] = share([s for r, s in zip(rows, strata, strict=True) if r["image_id"] in chosen])
        # each entry names its annotated part, so that the set's tasks read only what they need
        entries += [{"image_id": r["image_id"], "part": r["part"], "dataset": r["dataset"]} for r in rows if r["image_id"] in chosen]
    return entries, report, unusable


def stratified_sample(ids: list[str], strata: list[str | None], count: int, seed: int) -> list[str]:
    """``count`` of ``ids`` without replacement, each stratum (e.g. gesture) keeping its share
    (largest-remainder rounding). All of them when ``count`` >= len(ids)."""
    if count >= len(ids):
        return list(ids)
    rng = np.random.default_rng(seed)
    groups: dict[str | None, list[str]] = defaultdict(list)
    for image_id, stratum in zip(ids, strata, strict=True):
        groups[stratum].append(image_id)
    keys = sorted(groups, key=str)
    exact = {k: count * len(groups[k]) / len(ids) for k in keys}
    quota = {k: int(exact[k]) for k in keys}
    for k in sorted(keys, key=lambda k: exact[k] - quota[k], reverse=True)[: count - sum(quota.values())]:
        quota[k] += 1
    chosen = []
    for k in keys:
        chosen += list(rng.choice(sorted(groups[k]), size=quota[k], replace=False))
    return chosen


def share(values: list[str | None]) -> dict[str, float]:
    """Each value's fraction of ``values`` (for reporting gesture distributions)."""
    counts = Counter(str(v) for v in values)
    return {k: n / len(values) for k, n in sorted(counts.items())}


@dataclass(frozen=True)
class Draw:
    """One draw a set job will make from a dataset, as annotate makes it ahead of annotation."""

    count: int
    """Images the set needs from ``splits`` (e.g. build-hand-crops' HaGRID count)."""
    splits: tuple[str, ...] | None = ("train",)
    """Entries of these splits only (None: any split, e.g. LAION-Human's one)."""
    stratify_by: str | None = None
    """An entry field whose distribution the draw keeps (``gesture``)."""
    seed: int = 0

    def takes(self, split: str | None) -> bool:
        return self.splits is None or split in self.splits


class EntrySelection:
    """Which of a dataset's reader entries annotate annotates when only some are needed: every
    error entry (it costs nothing and must become an error row, never vanish), and for each
    ``Draw`` a seeded stratified sample of its splits' entries, ``count x oversample`` at first
    and more, from the entries not drawn yet, while a draw's annotated records fall short
    (``more``). ``selected`` (the ids drawn, in order) is what a rerun resumes from."""

    def __init__(self, entries: list[dict], draws: list[Draw], oversample: float, selected: list[str] | None = None):
        self.draws, self.oversample = draws, oversample
        self.errors = [e for e in entries if is_error(e)]
        self.good = {e["image_id"]: e for e in entries if not is_error(e)}
        unknown = [i for i in selected or [] if i not in self.good]
        if unknown:
            raise ValueError(f"{len(unknown)} selected ids are no longer entries of the dataset, e.g. {unknown[0]}")
        self.selected = list(selected) if selected is not None else self._first_round()

    def _first_round(self) -> list[str]:
        chosen: list[str] = []
        for draw in self.draws:
            chosen += self._draw(draw, math.ceil(draw.count * self.oversample), set(chosen))
        return chosen

    def _draw(self, draw: Draw, count: int, taken: set[str]) -> list[str]:
        pool = [e for i, e in self.good.items() if i not in taken and draw.takes(e.get("split"))]
        strata = [e.get(draw.stratify_by) if draw.stratify_by else None for e in pool]
        return stratified_sample([e["image_id"] for e in pool], strata, count, draw.seed + len(taken))

    def available(self, draw: Draw) -> int:
        return sum(draw.takes(e.get("split")) for e in self.good.values())

    def more(self, usable: list[int]) -> dict[int, int]:
        """Draw again for every draw whose ``usable`` annotated records (per draw, in order) fall
        short of its count: ``shortfall x oversample`` more entries not drawn yet. Returns the
        number added per draw that was short (0: its splits are exhausted)."""
        added = {}
        for i, (draw, have) in enumerate(zip(self.draws, usable, strict=True)):
            if have < draw.count:
                new = self._draw(draw, math.ceil((draw.count - have) * self.oversample), set(self.selected))
                self.selected += new
                added[i] = len(new)
        return added

    def entries(self) -> list[dict]:
        """What annotate annotates: the error entries, then the drawn ones."""
        return self.errors + [self.good[i] for i in self.selected]

    def settings(self) -> dict:
        return selection_settings(self.draws, self.oversample)


def selection_settings(draws: list[Draw], oversample: float) -> dict:
    """What a selection depends on, as JSON (a stored selection drawn otherwise is not resumed)."""
    return {"draws": [asdict(d) | {"splits": list(d.splits) if d.splits else None} for d in draws], "oversample": oversample}
