"""The benchmark (SPEC 7): every configured method generates the condition set, then every
method's images are scored in one shared pass;
write Table I (every method x DAP, DAP hands, MPJPE, MPJPE hands, CLIPSIM, FID fg, KID fg, with
95 % intervals) and Table II (the blending ablation: bbox / naive / sme on ``ablation.images``)
as CSV and Markdown beside the paper's values, and log them to MLflow.

Shared work is done once: the real side of the condition set (the real foregrounds' Inception
features, the person areas) is computed once under ``real/<key>`` (the condition set and the
Inception model's contents) for every method and rerun; one Ray Data pass with one set of
detection and scoring actor pools scores every method's pending images. Each method keeps its
own ``generate`` pass (each loads different models).

Reruns reuse work: each method's images live under ``generated/<name>-<key>``, the key a hash of
the method's settings, its models' *contents* and the condition set, and its scores under
``scores/<name>-<key>-<d>``; a rerun with one method changed generates and scores only that one
(the others find everything done, their figures reused). A killed benchmark resumes the same way.
``compare_to`` names an earlier benchmark output: a table of deltas is written beside.

    handdiff benchmark --config pipelines/configs/benchmark_demo.yaml
    ray job submit --working-dir . -- python -m pipelines.benchmark --config pipelines/configs/benchmark.yaml
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import mlflow
import numpy as np
from pydantic import Field

from handdiff import storage
from handdiff.config import InputPath, StrictModel
from handdiff.data.images import encode_image
from handdiff.data.keypoints import MIN_VISIBILITY
from handdiff.data.parts import part_uris, read_parts
from handdiff.metrics.images import KID_SUBSET_SIZE
from handdiff.metrics.keypoints import OksArea
from handdiff.metrics.summary import METRICS, conventions, paired_differences, read_resamples
from handdiff.metrics.tables import (
    PAPER_NAMES,
    PAPER_TABLE_I,
    PAPER_TABLE_II,
    TABLE_II_METRICS,
    deltas_markdown,
    paired_markdown,
    read_csv_rows,
    table_rows,
    to_csv,
    to_markdown,
)
from handdiff.models.fingerprint import fingerprint
from pipelines import generate, score
from pipelines.job import JobConfig, TrackingConfig, job_run, quiet, run_job
from pipelines.ray_stages import Resources, TaskResources

log = logging.getLogger("handdiff.benchmark")


TABLE_METRICS = {"table1": METRICS, "table2": TABLE_II_METRICS}
"""The columns each table shows."""


class MethodSection(StrictModel):
    method: Literal["handdiff", "oracle", "sd15", "controlnet-openpose", "t2i-adapter-openpose", "humansd", "handrefiner"]
    handdiff: generate.HandDiffSection | None = None
    baseline: generate.BaselineSection | None = None


class AblationSection(StrictModel):
    method: str
    """The ``methods`` entry (ours) whose blending strategies are compared."""
    strategies: list[Literal["bbox", "naive", "sme"]] = ["bbox", "naive", "sme"]
    images: int = Field(500, ge=2)
    """The first ``images`` conditions (the paper: 500)."""


class Config(JobConfig):
    job: Literal["benchmark"] = "benchmark"
    tracking: TrackingConfig = TrackingConfig(run_name="benchmark")
    conditions: InputPath
    """The benchmark set (``build-benchmark-set`` output)."""
    output: str
    methods: dict[str, MethodSection]
    """Table I's rows: a name -> a method and its models."""
    ablation: AblationSection | None = None
    scoring: score.ScoringModels
    generation: Resources = Resources(actors=1, batch_size=16, num_gpus=1)
    detection: Resources = Resources(actors=2, batch_size=16, num_cpus=1, num_gpus=0)
    scoring_resources: Resources = Resources(actors=1, batch_size=16, num_cpus=2, num_gpus=1)
    tasks: TaskResources = TaskResources()
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    bootstrap: int = Field(1000, ge=0)
    """Bootstrap resamples per method (one evaluation each, resampled), for the intervals and the paired comparisons."""
    kid_subset: int = Field(KID_SUBSET_SIZE, ge=2)
    """KID's subset size (torchmetrics' default; ``min(kid_subset, n)`` on smaller sets)."""
    oks_area: OksArea = "person"
    """DAP's OKS scale: the person's area (COCO-WholeBody's convention) or ``part_box``."""
    min_visibility: float = Field(MIN_VISIBILITY, gt=0, le=1)
    """The score jobs' presence rule for detected points (as annotation's)."""
    index_rows_per_file: int = Field(64, ge=1)
    compare_to: str | None = None
    """An earlier benchmark output: write the deltas of Table I against its ``table1.csv``."""
    paired_reference: str | None = None
    """The ``methods`` entry every other row's paired differences are taken against (default: the
    first of ours); Table II's are taken against ``sme``."""

    def resource_passes(self) -> list[list]:
        """Generation passes (one per method, one after another), then the one scoring pass."""
        from pipelines.resources import demands_of

        pool = {demand.key: demand for demand in demands_of(self)}
        return [[pool["generation"], pool["tasks"]], [pool["detection"], pool["scoring_resources"], pool["tasks"]]]

    def preflight(self) -> None:
        for name, section in self.methods.items():
            if section.method == "handdiff" and section.handdiff is not None:
                generate.check_trained_settings(section.handdiff, f"methods.{name}.handdiff")

    RESUME_SAFE = (
        *JobConfig.RESUME_SAFE,
        "methods.*",
        "ablation",
        "ablation.*",
        "compare_to",
        "bootstrap",
        "kid_subset",
        "oks_area",
        "min_visibility",
        "paired_reference",
        "generation.*",
        "detection.*",
        "scoring_resources.*",
    )
    """A benchmark is rerun to add or change methods: each method's work is keyed by its settings
    (its own generate and score runs), so such a rerun continues this job; the run's params keep
    the first values, its tables and ``runs.json`` show the current ones."""


def run_key(section: dict, conditions: str, count: int | None, models: dict[str, str]) -> str:
    """What a method's images depend on: its settings with every model location replaced by the
    model's *contents* (``models``: location -> fingerprint; a model retrained in place gets a new
    key, the same model at another path or prefix keeps it), the condition set (its parts are
    named by the ids they hold) and how many conditions were taken."""
    identity = {
        "method": by_contents(section, models),
        "count": count,
        "conditions": sorted(uri.rsplit("/", 1)[1] for uri in part_uris(f"{conditions}/records")),
    }
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def by_contents(value: Any, models: dict[str, str]) -> Any:
    """``value`` (JSON-able) with every string that is a model location of ``models`` replaced by
    ``model:<fingerprint>``."""
    if isinstance(value, dict):
        return {key: by_contents(item, models) for key, item in value.items()}
    if isinstance(value, list):
        return [by_contents(item, models) for item in value]
    return f"model:{models[value]}" if isinstance(value, str) and value in models else value


def fingerprinted(locations: list[str], cache: dict[str, str]) -> dict[str, str]:
    """location -> fingerprint (``handdiff.models.fingerprint``), each model read once per run (``cache``)."""
    for location in locations:
        if location not in cache:
            cache[location] = fingerprint(location)
    return {location: cache[location] for location in locations}


def method_models(section: dict, cache: dict[str, str]) -> dict[str, str]:
    """location -> fingerprint of every model a method section loads."""
    return fingerprinted(generate.Config(conditions={"path": "unused"}, output="unused", **section).model_locations(), cache)


def used_section(section: MethodSection) -> dict:
    """The method section as JSON with only what its method reads: a baseline row keeps its own
    models and settings, not those of the other baselines a shared ``baseline`` block names
    (so changing one baseline's model neither changes another's key nor shows in its params)."""
    out = section.model_dump(mode="json", exclude_none=True)
    if section.method not in generate.BASELINE_MODELS:
        out.pop("baseline", None)
    elif "baseline" in out:
        used = generate.baseline_fields(section.method)
        out["baseline"] = {key: value for key, value in out["baseline"].items() if key in used}
    return out


def method_runs(cfg: Config) -> list[tuple[str, str, dict, int | None]]:
    """(table, row name, method section as JSON, condition count) of every generate+score pass."""
    runs = [("table1", name, used_section(section), None) for name, section in cfg.methods.items()]
    runs.sort(key=lambda run: run[2]["method"] == "handrefiner")  # after SD 1.5, whose images it refines
    if cfg.ablation:
        base = used_section(cfg.methods[cfg.ablation.method])
        for strategy in cfg.ablation.strategies:
            section = json.loads(json.dumps(base))
            section["handdiff"]["strategy"] = strategy
            runs.append(("table2", strategy, section, cfg.ablation.images))
    return runs


def with_sd_images(section: dict, done: dict[str, dict]) -> dict:
    """A ``handrefiner`` section takes the images of an ``sd15`` row already generated with the same
    base, steps and guidance (the images it would draw itself: each from its condition's seed), so
    that a benchmark with both rows draws them once; any other section is returned as it is."""
    same = ("base", "steps", "guidance")
    if section["method"] != "handrefiner" or section.get("baseline", {}).get("sd_images"):
        return section
    for result in done.values():
        sd = result["section"].get("baseline", {})
        if result["method"] == "sd15" and all(sd.get(k) == section["baseline"].get(k) for k in same):
            return _with_sd_images(section, result["generated"])
    return section


def _with_sd_images(section: dict, sd_images: str) -> dict:
    return {**section, "baseline": {**section["baseline"], "sd_images": sd_images}}


def keyed_by_folder_name(section: dict) -> dict:
    """``section`` with ``baseline.sd_images`` (another row's output) reduced to its folder's name,
    ``<row>-<key>``: what those images are, not where the output lies (a relative and an absolute
    path to the same benchmark give one key)."""
    sd_images = section.get("baseline", {}).get("sd_images")
    if not sd_images:
        return section
    return _with_sd_images(section, sd_images.rstrip("/").rsplit("/", 1)[-1])


def real_side_folder(cfg: Config, fingerprints: dict[str, str]) -> str:
    """``real/<key>``: the real side of this condition set with this Inception model, shared by
    every method and every rerun (the key: the condition parts' names and the model's contents)."""
    identity = {
        "conditions": sorted(uri.rsplit("/", 1)[1] for uri in part_uris(f"{cfg.conditions}/records")),
        "inception": fingerprinted([cfg.scoring.inception], fingerprints)[cfg.scoring.inception],
    }
    return storage.join(cfg.output, "real", hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12])


def generate_method(cfg: Config, name: str, section: dict, count: int | None, fingerprints: dict[str, str]) -> dict:
    """One method's generate pass (skipped when done); where its images and scores go."""
    models = method_models(section, fingerprints)
    key = run_key(keyed_by_folder_name(section), cfg.conditions, count, models)
    # the per-image score rows depend on the scoring models' contents and the detector's presence rule too
    scorers = [cfg.scoring.clip, cfg.scoring.sam, cfg.scoring.inception]
    contents = [fingerprinted(scorers, fingerprints)[location] for location in scorers]
    detection = hashlib.sha1(json.dumps({"min_visibility": cfg.min_visibility, "models": contents}).encode()).hexdigest()[:6]
    generated = storage.join(cfg.output, "generated", f"{name}-{key}")
    gen = generate.Config(
        tracking=TrackingConfig(run_name=f"{cfg.tracking.run_name}-{name}-{key}", tracking_uri=cfg.tracking.tracking_uri),
        conditions={"path": cfg.conditions, "count": count},
        output=generated,
        dtype=cfg.dtype,
        resources=cfg.generation,
        tasks=cfg.tasks,
        index_rows_per_file=cfg.index_rows_per_file,
        **section,
    )
    with quiet():  # the benchmark prints the tables; each run's own report goes to the log file
        generate.run(gen)
    return {
        "method": section["method"],
        "section": section,
        "key": key,
        "generated": generated,
        "scores": storage.join(cfg.output, "scores", f"{name}-{key}-{detection}"),
        "models": models,
    }


def score_all(cfg: Config, results: dict[str, dict[str, dict]], fingerprints: dict[str, str]) -> tuple[dict, dict[str, float]]:
    """Every method's images scored in one Ray Data pass (one set of detection and scoring actor
    pools, one real side for the condition set), then each method's figures (reused when its rows
    and the figure settings are unchanged). Returns the pass's counts and timing."""
    scoring = score.Scoring(
        cfg.conditions,
        real_side_folder(cfg, fingerprints),
        cfg.scoring,
        cfg.detection,
        cfg.scoring_resources,
        cfg.tasks,
        min_visibility=cfg.min_visibility,
        rows_per_file=cfg.index_rows_per_file,
    )
    jobs = {r["generated"]: r["scores"] for rows in results.values() for r in rows.values()}
    counts, timing = score.score_outputs(scoring, jobs, storage.join(cfg.output, "scores", "_index"))
    settings = score.FigureSettings(cfg.bootstrap, kid_subset=cfg.kid_subset, oks_area=cfg.oks_area, min_visibility=cfg.min_visibility)
    for table, rows in results.items():
        shown = replace(settings, whole_image_intervals="fid" in TABLE_METRICS[table])  # intervals for what the table shows
        for result in rows.values():
            result.update({**score.summarize(result["scores"], result["generated"], shown), "method": result["method"]})
    return counts, timing


def figure_one(cfg: Config, table1: dict[str, dict], images: int = 4) -> np.ndarray | None:
    """The paper's Figure 1: the first ``images`` conditions (by id) that every Table I method
    generated, in rows; one column per method, the pose condition last. (H, W, 3) uint8."""
    from handdiff.data.images import decode_image
    from handdiff.data.skeleton import draw_skeleton
    from handdiff.viz import contact_sheet

    uris = {
        name: {r["image_id"]: r["image_uri"] for r in read_parts(f"{r['generated']}/records", ["image_id", "image_uri"]).to_pylist()}
        for name, r in table1.items()
    }
    ids = sorted(set.intersection(*(set(u) for u in uris.values())))[:images] if uris else []
    if not ids:
        return None
    conditions = {
        r["image_id"]: r
        for r in read_parts(f"{cfg.conditions}/records", ["image_id", "keypoints", "size"]).to_pylist()
        if r["image_id"] in ids
    }
    tiles, labels = [], []
    for row, image_id in enumerate(ids):
        tiles += [decode_image(storage.read_bytes(uris[name][image_id])) for name in table1]
        keypoints = np.asarray(conditions[image_id]["keypoints"], np.float32).reshape(133, 3)
        tiles.append(draw_skeleton(keypoints, conditions[image_id]["size"]))
        labels += [*table1, "pose"] if row == 0 else [""] * (len(table1) + 1)
    return contact_sheet(tiles, columns=len(table1) + 1, cell=160, labels=labels)


def paired_tables(cfg: Config, results: dict[str, dict[str, dict]]) -> dict[str, str]:
    """``table1_paired.md`` / ``table2_paired.md``: every row against the reference, on the same
    resamples (each method's ``resamples.parquet``, drawn with the same seed over the same conditions)."""
    ours = [name for name, section in cfg.methods.items() if section.method == "handdiff"]
    files = {}
    for table, reference, metrics, title in (
        ("table1", cfg.paired_reference or (ours[0] if ours else None), TABLE_METRICS["table1"], "Table I, paired"),
        ("table2", "sme", TABLE_METRICS["table2"], "Table II, paired"),
    ):
        samples = {
            name: read_resamples(f"{r['scores']}/resamples.parquet")
            for name, r in results[table].items()
            if storage.exists(f"{r['scores']}/resamples.parquet")
        }
        if reference not in samples or len(samples) < 2:
            continue
        differences = {name: paired_differences(samples[reference], s) for name, s in samples.items() if name != reference}
        files[f"{table}_paired.md"] = paired_markdown(differences, metrics, f"{title}: {reference} minus each method", reference)
    return files


def run(cfg: Config) -> int:
    results: dict[str, dict[str, dict]] = {"table1": {}, "table2": {}}
    fingerprints: dict[str, str] = {}  # each model read once per run
    for table, name, section, count in method_runs(cfg):
        log.info("benchmark: generate %s %s", table, name)
        results[table][name] = generate_method(cfg, name, with_sd_images(section, results["table1"]), count, fingerprints)
    results["table1"] = {name: results["table1"][name] for name in cfg.methods}  # Table I in the config's order
    log.info("benchmark: scoring every method in one pass")
    counts, timing = score_all(cfg, results, fingerprints)
    figure = figure_one(cfg, results["table1"])
    table1 = table_rows(results["table1"], PAPER_TABLE_I, METRICS, PAPER_NAMES)
    table2 = table_rows(results["table2"], PAPER_TABLE_II, TABLE_II_METRICS)
    how = conventions(cfg.oks_area, cfg.kid_subset, cfg.min_visibility)
    files = {
        "table1.csv": to_csv(table1, METRICS),
        "table1.md": to_markdown(table1, METRICS, "Table I", how),
        "table2.csv": to_csv(table2, TABLE_II_METRICS),
        "table2.md": to_markdown(table2, TABLE_II_METRICS, "Table II (blending ablation)", how),
    }
    files.update(paired_tables(cfg, results))
    if cfg.compare_to:
        files["table1_deltas.md"] = deltas_markdown(table1, read_csv_rows(storage.read_text(f"{cfg.compare_to}/table1.csv")))
    with job_run(cfg) as active:
        for filename, text in files.items():
            storage.write_text(storage.join(cfg.output, filename), text)
            mlflow.log_text(text, f"tables/{filename}")
        for table, rows in results.items():
            for name, result in rows.items():
                mlflow.log_metrics({f"{table}.{name}.{m}": float(v) for m, v in result["metrics"].items() if v == v})
        if figure is not None:
            storage.write_bytes(storage.join(cfg.output, "figure1.png"), encode_image(figure, "PNG"))
            mlflow.log_image(figure, "figures/figure1.png")
        mlflow.log_metrics({f"scoring.{k}": float(v) for k, v in timing.items()})
        mlflow.log_metrics(
            {
                "scoring.rows_in": sum(sum(c.values()) for c in counts.values()),
                **{f"scoring.{t}": sum(c[t] for c in counts.values()) for t in ("records", "errors")},
            }
        )
        mlflow.log_dict(
            {
                t: {n: {"key": r["key"], "method": r["method"], "models": r["models"]} for n, r in rows.items()}
                for t, rows in results.items()
            },
            "runs.json",
        )
        mlflow.set_tags({f"model.{i}": f"{location} {digest}" for i, (location, digest) in enumerate(sorted(fingerprints.items()))})
    print(f"\nbenchmark under {cfg.output} (MLflow run {active.info.run_id}, experiment {cfg.experiment!r})\n")
    print(files["table1.md"])
    if "table1_paired.md" in files:
        print(files["table1_paired.md"])
    if results["table2"]:
        print(files["table2.md"])
    if "table1_deltas.md" in files:
        print(f"### Changes since {cfg.compare_to}\n\n{files['table1_deltas.md']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(Config, run, argv, job="benchmark", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
