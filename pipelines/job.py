"""What every entrypoint shares: the common config sections, argument parsing, and
the Ray and logging set-up. Each Ray job ``pipelines/<job>.py`` has the same shape::

    class Config(JobConfig): ...                 # its typed config

    def run(cfg: Config) -> int:                 # run (in an MLflow run) and report
        ...

    def main(argv=None) -> int:                  # parse config -> set up -> run
        return run_job(Config, run, argv, job="<job>", doc=__doc__)
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, TypeVar

from pydantic import Field

from handdiff import storage
from handdiff.config import ConfigError, StrictModel, load_config, missing_inputs, to_yaml

CONFIG_DIR = Path(__file__).parent / "configs"


class RayConfig(StrictModel):
    """Where the job's Ray work runs."""

    address: str | None = None
    """``None``: ``RAY_ADDRESS`` if set (as under ``ray job submit``), else a new local instance.
    Otherwise ``auto``, ``host:port`` or ``ray://host:10001``."""
    num_cpus: int | None = None
    """CPUs of a new local instance (default: all)."""
    object_store_memory: int | None = Field(None, ge=78_643_200)
    """Bytes of object store of a new local instance (default: Ray's, 30% of memory); Ray spills
    to disk beyond it. Ray's minimum is 75 MiB."""
    include_dashboard: bool = False
    """Start the dashboard with a new local instance."""


class TrackingConfig(StrictModel):
    """Where the job's MLflow run goes."""

    tracking_uri: str | None = None
    """``None``: ``MLFLOW_TRACKING_URI`` if set, else a local sqlite store in ``./mlruns``."""
    experiment: str | None = None
    """``None``: ``handdiff-<job>``, one experiment per job kind."""
    run_name: str
    """A rerun with the same name continues that run (and its checkpoints, for training jobs), if
    its config is the same but for the job's resume-safe keys; any other difference stops the job
    before it starts."""
    resume: bool = True
    """Continue an earlier run of the same name; false: open a new run (new checkpoints) under it."""


class JobConfig(StrictModel):
    """Base of every job's config: subclasses pin ``job`` with a ``Literal``."""

    job: str
    ray: RayConfig = Field(default_factory=RayConfig)
    tracking: TrackingConfig

    RESUME_SAFE: ClassVar[tuple[str, ...]] = ("tracking.*", "ray.*", "tasks.*", "*.resources.*")
    """Keys (``fnmatch`` patterns) a resumed run may change: where and how fast it runs, never
    what it computes. Subclasses extend it (training: ``train.steps``)."""

    @property
    def experiment(self) -> str:
        return self.tracking.experiment or f"handdiff-{self.job}"

    def preflight(self) -> None:
        """Checks that need more than the config itself (e.g. a look at the input data), run
        before Ray starts or an MLflow run opens; raise ``ConfigError`` with one line per problem."""


C = TypeVar("C", bound=JobConfig)


def config_class(job: str) -> type[JobConfig]:
    """The typed config of a job: the ``Config`` class of its module."""
    from pipelines.cli import JOBS

    return importlib.import_module(JOBS[job][0]).Config


def default_config_path(job: str) -> Path:
    """``configs/<job>.yaml``, else the job's embedded-default config ``configs/<job>_demo.yaml``."""
    name = job.replace("-", "_")
    plain = CONFIG_DIR / f"{name}.yaml"
    return plain if plain.exists() else CONFIG_DIR / f"{name}_demo.yaml"


def parse_job_config(config_cls: type[C], argv: Sequence[str] | None, *, job: str, doc: str | None) -> C | None:
    """Parse ``[--config FILE] [--print-config] [key=value ...]`` into ``config_cls``.

    Prints the resolved config and returns None for ``--print-config``; prints one
    line per config problem and exits 2 on a bad file or override.
    """
    default = default_config_path(job)
    parser = argparse.ArgumentParser(
        prog=f"handdiff {job}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Overrides are dotted keys, e.g. tracking.run_name=try2 ray.address=auto",
    )
    parser.add_argument("--config", default=str(default), help=f"YAML config (default: {_shown(default)})")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides of config keys")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(config_cls, args.config, args.overrides)
        if cfg.job == job and not args.print_config:
            if missing := missing_inputs(cfg, storage.exists):
                raise ConfigError("\n".join(missing))
            cfg.preflight()
            preflight_tracking(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if cfg.job != job:
        print(f"error: {args.config}: job = {cfg.job!r}: this is a config for 'handdiff {cfg.job}', not {job}", file=sys.stderr)
        raise SystemExit(2)
    if args.print_config:
        print(to_yaml(cfg), end="")
        return None
    return cfg


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_job(config_cls: type[C], run: Callable[[C], int], argv: Sequence[str] | None, *, job: str, doc: str | None) -> int:
    """Parse the config, set up logging and Ray, run the job; its exit code."""
    cfg = parse_job_config(config_cls, argv, job=job, doc=doc)
    if cfg is None:
        return 0
    setup_logging()
    init_ray(cfg.ray)
    try:
        return run(cfg)
    except ConfigError as err:  # e.g. a rerun conflict found once the run opens: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


def preflight_tracking(cfg: JobConfig) -> None:
    """Before Ray starts: the MLflow server answers, and a run of this name, if any, is this
    same job (else ``ConfigError`` naming the differing keys and the ways out)."""
    from handdiff.tracking import check_reachable, rerun_conflict, resolve_tracking_uri

    uri = resolve_tracking_uri(cfg.tracking.tracking_uri)
    check_reachable(uri)
    if cfg.tracking.resume:
        problem = rerun_conflict(cfg.experiment, cfg.tracking.run_name, cfg.model_dump(mode="json"), tracking_uri=uri,
                                 resume_safe=cfg.RESUME_SAFE)  # fmt: skip
        if problem:
            raise ConfigError(problem)


@contextmanager
def job_run(cfg: JobConfig, **tags: str) -> Iterator:
    """The job's MLflow run (``handdiff.tracking.tracked_run``): continued when its name exists and
    the config matches but for ``RESUME_SAFE`` keys; tagged with the code version."""
    from handdiff.provenance import code_version
    from handdiff.tracking import tracked_run

    with tracked_run(cfg.experiment, cfg.tracking.run_name, cfg.model_dump(mode="json"), tracking_uri=cfg.tracking.tracking_uri,
                     resume=cfg.tracking.resume, tags={"code_version": code_version(), **tags}, resume_safe=cfg.RESUME_SAFE) as active:  # fmt: skip
        yield active


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # Keep our own INFO lines; the libraries' chatter only from WARNING.
    for noisy in ("mlflow", "alembic", "urllib3", "botocore", "s3fs", "fsspec", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Ray Data warns whenever a stage gets fewer blocks than its task limit: noise on small inputs
    warnings.filterwarnings("ignore", message="The maximum number of concurrent tasks", category=UserWarning)


def init_ray(cfg: RayConfig) -> None:
    """Connect to the configured cluster, or start a local instance; reuse one already up."""
    import ray

    if ray.is_initialized():
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        # "local": always a new instance; a bare ray.init() would join whatever cluster this machine
        # advertises (a running `ray start --head`, or the stale file a killed head leaves behind)
        ray.init(address="local", num_cpus=cfg.num_cpus, object_store_memory=cfg.object_store_memory,
                 include_dashboard=cfg.include_dashboard, logging_level=logging.WARNING)  # fmt: skip
