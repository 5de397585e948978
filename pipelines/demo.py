"""The embedded default, end to end on one CPU machine with nothing downloaded.

Builds the tiny model zoo (cached), writes the sample datasets in their native
layouts, reads every one of them through the dataset readers, checks that each
deliberate bad entry of the sample data surfaces with its expected error, then, on a
local Ray instance, runs the jobs with their demo settings (pipelines/configs/*_demo.yaml):
``annotate`` the sample data, ``build-hand-crops``, ``train-hand`` for a few steps,
``build-outpaint-set``, ``train-body`` for a few steps, ``generate`` a handful of people
from the sample poses with the two trained stages, then a small benchmark
(``build-benchmark-set``, ``benchmark``: every method on a few HaGRID test poses, Table I). Each
job logs to the local MLflow store, in its own experiment. Everything goes under ``workdir``;
a second demo reuses what the first wrote.

    handdiff demo                          # = make demo
    handdiff demo workdir=/tmp/demo        # elsewhere
    handdiff demo --print-config
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Literal

import mlflow

from handdiff import storage
from handdiff.assets.sample_data import build_sample_data, check_manifest, sample_sources
from handdiff.assets.tiny_zoo import build_tiny_zoo
from handdiff.data.readers import open_reader, scan_dataset
from handdiff.tracking import resolve_tracking_uri
from pipelines import annotate, benchmark, build_benchmark_set, build_hand_crops, build_outpaint_set, generate, train_body, train_hand
from pipelines.demo_configs import demo_config
from pipelines.job import (
    JobConfig,
    RayConfig,
    TrackingConfig,
    init_ray,
    job_run,
    parse_job_config,
    run_checked,
    setup_logging,
    wants_verbose,
)


class Config(JobConfig):
    job: Literal["demo"] = "demo"
    tracking: TrackingConfig = TrackingConfig(run_name="demo")
    ray: RayConfig = RayConfig(num_cpus=8)
    """Logical CPUs: the tiny models' actors and the tasks time-share the machine's cores."""
    workdir: str = "runs/demo"
    """Where the demo writes everything: zoo/, sample-data/, and later datasets and models."""
    rebuild_zoo: bool = False
    """Rebuild the tiny zoo even when the cached one is up to date."""


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_job_config(Config, argv, job="demo", doc=__doc__)
    if cfg is None:
        return 0
    setup_logging("demo", wants_verbose(argv))
    zoo_dir, data_dir = storage.join(cfg.workdir, "zoo"), storage.join(cfg.workdir, "sample-data")

    with job_run(cfg) as run:
        zoo = build_tiny_zoo(zoo_dir, force=cfg.rebuild_zoo)
        start = time.perf_counter()
        manifest = build_sample_data(data_dir)
        sample_seconds = time.perf_counter() - start

        counts, all_records, all_errors = {}, [], []
        for name, options in sample_sources(data_dir).items():
            records, errors = scan_dataset(open_reader(**options))
            counts[name] = {"records": len(records), "errors": len(errors)}
            all_records += records
            all_errors += errors
        problems = check_manifest(manifest, all_errors, all_records)

        mlflow.log_metrics(
            {"zoo_build_seconds": zoo["build_seconds"], "zoo_mib": zoo["bytes"] / 2**20, "sample_data_seconds": sample_seconds}
        )
        mlflow.log_metrics({f"{name}.{k}": v for name, c in counts.items() for k, v in c.items()})
        mlflow.log_dict({"counts": counts, "errors": all_errors, "manifest_problems": problems}, "summary.json")

    print(f"\nhanddiff demo: everything under {cfg.workdir}")
    print(f"  tiny zoo     {zoo_dir}  ({'reused' if zoo['cached'] else 'built'}, {zoo['bytes'] / 2**20:.0f} MiB)")
    print(f"  sample data  {data_dir}")
    print(f"  {'dataset':<14}{'records':>8}{'errors':>8}")
    for name, c in counts.items():
        print(f"  {name:<14}{c['records']:>8}{c['errors']:>8}")
    bad = len(manifest["bad_entries"])
    print(f"  bad entries of the sample data accounted for: {bad - len(problems)}/{bad}")
    for line in problems:
        print(f"    MISSING {line}")
    print(f"  MLflow run {run.info.run_id} in experiment {cfg.experiment!r}")
    if problems:
        return 1

    init_ray(cfg.ray)
    for job in (annotate, build_hand_crops, train_hand, build_outpaint_set, train_body, generate, build_benchmark_set, benchmark):
        name = job.__name__.rsplit(".", 1)[1].replace("_", "-")
        tracking = cfg.tracking.model_copy(update={"run_name": f"{cfg.tracking.run_name}-{name}", "experiment": None})
        # the shipped <job>_demo.yaml, in this workdir, with the models this demo's runs trained
        job_cfg = demo_config(name, cfg.workdir, tracking, runs_prefix=cfg.tracking.run_name)
        size_to_cluster(job_cfg, name)
        if (code := run_checked(job_cfg, job.run, name=name)) != 0:
            return code
    print(f"\nSee everything in MLflow: mlflow ui --backend-store-uri {resolve_tracking_uri(cfg.tracking.tracking_uri)}")
    return 0


def size_to_cluster(job_cfg: JobConfig, name: str) -> None:
    """The demo's pools fit the instance it is given (e.g. a 2-CPU head under ``ray job submit``):
    their CPUs scaled down together where they would not (the cluster check then passes)."""
    from pipelines.resources import current_cluster, fit_demands

    cluster = current_cluster()
    if fit_demands(job_cfg, cluster.cpus):
        print(f"  {name}: pools scaled to this instance's {cluster.cpus:g} CPUs")


if __name__ == "__main__":
    sys.exit(main())
