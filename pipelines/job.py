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
import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar

from pydantic import Field

from handdiff import storage
from handdiff.config import ConfigError, StrictModel, load_config, missing_inputs, read_yaml, to_yaml

if TYPE_CHECKING:
    from pipelines.resources import Demand

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
    autoscale_to: dict[str, float] | None = None
    """What an autoscaling cluster can grow to, e.g. ``{CPU: 64, GPU: 8}``: the pre-start check
    compares the job's pools with this instead of the nodes up now (GPU workers from zero)."""
    report_waits_after_s: float = Field(60.0, gt=0)
    """A pass that writes nothing for this long says, every as long again, what Ray has pending."""


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

    RESUME_SAFE: ClassVar[tuple[str, ...]] = ("tracking.*", "ray.*", "tasks.*", "resources.*", "detection.*", "*.resources.*")
    """Keys (``fnmatch`` patterns) a resumed run may change: where and how fast it runs, never
    what it computes. Subclasses extend it (training: ``train.steps``)."""

    @property
    def experiment(self) -> str:
        return self.tracking.experiment or f"handdiff-{self.job}"

    def preflight(self) -> None:
        """Checks that need more than the config itself (e.g. a look at the input data), run
        before Ray starts or an MLflow run opens; raise ``ConfigError`` with one line per problem."""

    def resource_passes(self) -> list[list[Demand]]:
        """The pools that run together, per pass (``pipelines.resources``): by default one pass of
        every pool in the config; a job whose passes run one after another says so."""
        from pipelines.resources import demands_of

        return [list(demands_of(self))]

    def resolved(self) -> JobConfig:
        """The config as the job runs it and logs it to MLflow (the training jobs make local paths
        absolute, since Ray Train's workers run in another directory). The rerun check compares
        this form with the run's params, so the same command continues its run."""
        return self


C = TypeVar("C", bound=JobConfig)


class JobFailed(RuntimeError):
    """The job ran and wrote its outputs, but they must not be used as they are (e.g. most rows
    are errors); ``str()`` is the line to print."""


def check_error_share(what: str, output: str, errors: int, rows_in: int, limit: float) -> None:
    """Raise ``JobFailed`` when more than ``limit`` of ``rows_in`` are errors, naming the top reasons."""
    from handdiff.data.parts import top_error_reasons

    if rows_in and errors / rows_in > limit:
        reasons = "; ".join(f"{reason} ({count})" for reason, count in top_error_reasons(output))
        raise JobFailed(
            f"{what}: {errors} of {rows_in} rows are errors ({errors / rows_in:.0%}, above max_error_share "
            f"{limit:g}; the errors table is under {output}/errors): {reasons}"
        )


def default_config_path(job: str) -> Path:
    """``configs/<job>.yaml``, else the job's embedded-default config ``configs/<job>_demo.yaml``."""
    name = job.replace("-", "_")
    plain = CONFIG_DIR / f"{name}.yaml"
    return plain if plain.exists() else CONFIG_DIR / f"{name}_demo.yaml"


def job_parser(job: str, doc: str | None) -> argparse.ArgumentParser:
    """The job's argument parser; its ``--help`` lists the default config's top-level keys (read
    from the YAML, so that ``handdiff <job> --help`` needs neither torch nor Ray)."""
    default = default_config_path(job)
    try:
        keys = ", ".join(read_yaml(str(default)))
    except ConfigError:
        keys = "(see --print-config)"
    parser = argparse.ArgumentParser(
        prog=f"handdiff {job}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"config keys (top level): {keys}\n--print-config shows every key with its resolved value.\n"
        "Overrides are dotted keys, e.g. tracking.run_name=try2 ray.address=auto",
    )
    parser.add_argument("--config", default=str(default), help=f"YAML config (default: {_shown(default)})")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--verbose", action="store_true", help="show every library's log lines here too (they always go to the log file)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides of config keys")
    return parser


def parse_job_config(config_cls: type[C], argv: Sequence[str] | None, *, job: str, doc: str | None) -> C | None:
    """Parse ``[--config FILE] [--print-config] [key=value ...]`` into ``config_cls``.

    Prints the resolved config and returns None for ``--print-config``; prints one
    line per config problem and exits 2 on a bad file or override.
    """
    parser = job_parser(job, doc)
    args = parser.parse_args(argv)
    try:
        if not args.verbose:  # MLflow's store set-up lines, from the checks below
            logging.getLogger("mlflow").setLevel(logging.WARNING)
        check_arguments(job, args.config, args.overrides)
        cfg = load_config(config_cls, args.config, args.overrides)
        if not args.print_config:
            check_config(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.print_config:
        print(to_yaml(cfg), end="")
        return None
    return cfg


def check_arguments(job: str, config: str, overrides: Sequence[str]) -> None:
    """The mistakes a first try makes, each as one line before pydantic sees the config: a config
    file that is not there (the shipped ones are listed), a file given without ``--config``, a
    config for another job."""
    for text in overrides:
        if "=" not in text and (text.endswith((".yaml", ".yml")) or Path(text).is_file()):
            raise ConfigError(f"{text}: a config file is given with --config: handdiff {job} --config {text}")
    if not storage.exists(config):
        shipped = ", ".join(_shown(p) for p in shipped_configs(job)) or "none"
        raise ConfigError(f"{config}: config file not found; shipped configs for {job}: {shipped}")
    declared = read_yaml(config).get("job")
    if declared is not None and declared != job:
        raise ConfigError(f"{config}: job = {declared!r}: this is a config for 'handdiff {declared}', not {job}")


def shipped_configs(job: str) -> list[Path]:
    """The configs in ``pipelines/configs`` whose ``job`` is ``job``."""
    return [p for p in sorted(CONFIG_DIR.glob("*.yaml")) if read_yaml(str(p)).get("job") == job]


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_job(config_cls: type[C], run: Callable[[C], int], argv: Sequence[str] | None, *, job: str, doc: str | None) -> int:
    """Parse and check the config (before Ray starts), set up logging and Ray, run the job; its exit code."""
    cfg = parse_job_config(config_cls, argv, job=job, doc=doc)
    if cfg is None:
        return 0
    setup_logging(job, wants_verbose(argv))
    init_ray(cfg.ray)
    return run_checked(cfg, run, config_checked=True)


def check_config(cfg: JobConfig) -> None:
    """Everything a job checks before it computes, each problem a ``ConfigError`` line: its inputs
    exist, its own ``preflight``, the MLflow server answers and a run of its name is this job."""
    if missing := missing_inputs(cfg, storage.exists):
        raise ConfigError("\n".join(missing))
    cfg.preflight()
    preflight_tracking(cfg)


def run_checked(cfg: C, run: Callable[[C], int], *, config_checked: bool = False, name: str = "") -> int:
    """The one way a job runs once Ray is up (its own entry point, or a step of the demo): the
    config checks (``check_config``, unless done already), the cluster check, ``run``. A config
    problem is one line and exit code 2, a failed job one line and 1; ``name`` prefixes them."""
    prefix = f"{name}: " if name else ""
    try:
        if not config_checked:
            check_config(cfg)
        check_cluster(cfg)
        return run(cfg)
    except ConfigError as err:  # e.g. a rerun conflict found once the run opens: one line, no traceback
        print(f"error: {prefix}{err}", file=sys.stderr)
        return 2
    except JobFailed as err:
        print(f"error: {prefix}{err}", file=sys.stderr)
        return 1


def check_cluster(cfg: JobConfig) -> None:
    """``ConfigError`` before any compute when the job's pools cannot all be placed on the
    connected cluster (``pipelines.resources.check_demands``)."""
    from pipelines.resources import check_demands, current_cluster

    check_demands(cfg.resource_passes(), current_cluster(), cfg.ray.autoscale_to)


def preflight_tracking(cfg: JobConfig) -> None:
    """Before Ray starts: the MLflow server answers, and a run of this name, if any, is this
    same job (else ``ConfigError`` naming the differing keys and the ways out)."""
    from handdiff.tracking import check_reachable, rerun_conflict, resolve_tracking_uri

    uri = resolve_tracking_uri(cfg.tracking.tracking_uri)
    check_store_outlives_job(uri)
    check_reachable(uri)
    if cfg.tracking.resume:
        problem = rerun_conflict(
            cfg.experiment, cfg.tracking.run_name, cfg.resolved().model_dump(mode="json"), tracking_uri=uri, resume_safe=cfg.RESUME_SAFE
        )
        if problem:
            raise ConfigError(problem)


RAY_WORKING_DIR_COPY = "/runtime_resources/working_dir_files/"
"""Part of the path of Ray's temporary copy of a job's ``--working-dir``, which Ray deletes."""


def in_ray_working_dir_copy(path: str | Path) -> bool:
    return RAY_WORKING_DIR_COPY in str(Path(path).resolve()) + "/"


def check_store_outlives_job(uri: str) -> None:
    """``ConfigError`` when the MLflow store ``uri`` is a local file inside Ray's temporary copy of
    the working directory (``ray job submit --working-dir .`` with the default ``./mlruns``): the
    runs would vanish with the copy."""
    path = next((uri[len(scheme) :] for scheme in ("sqlite:///", "file://") if uri.startswith(scheme)), None if "://" in uri else uri)
    if path and in_ray_working_dir_copy(path):
        raise ConfigError(
            f"tracking: the MLflow store {uri} is inside Ray's temporary copy of the working directory, deleted with the job: "
            'set MLFLOW_TRACKING_URI (the head\'s environment, or --runtime-env-json \'{"env_vars": {"MLFLOW_TRACKING_URI": ...}}\') '
            "or tracking.tracking_uri to a server or a path outside it"
        )


def default_log_dir() -> Path:
    """``$HANDDIFF_LOG_DIR``, else ``./logs``; inside Ray's temporary copy of the working directory
    (deleted with the job), ``<temp dir>/handdiff-logs`` instead."""
    if "HANDDIFF_LOG_DIR" in os.environ:
        return Path(os.environ["HANDDIFF_LOG_DIR"])
    import tempfile

    return Path(tempfile.gettempdir()) / "handdiff-logs" if in_ray_working_dir_copy(Path.cwd()) else Path("logs")


@contextmanager
def job_run(cfg: JobConfig, **tags: str) -> Iterator:
    """The job's MLflow run (``handdiff.tracking.tracked_run``): continued when its name exists and
    the config matches but for ``RESUME_SAFE`` keys; tagged with the code version."""
    from handdiff.provenance import code_version
    from handdiff.tracking import tracked_run

    with tracked_run(
        cfg.experiment,
        cfg.tracking.run_name,
        cfg.model_dump(mode="json"),
        tracking_uri=cfg.tracking.tracking_uri,
        resume=cfg.tracking.resume,
        tags={"code_version": code_version(), **tags},
        resume_safe=cfg.RESUME_SAFE,
    ) as active:
        yield active


LIBRARY_LOGGERS = ("mlflow", "alembic", "urllib3", "botocore", "s3fs", "fsspec", "filelock", "httpx", "matplotlib", "py.warnings")


def setup_logging(job: str, verbose: bool = False) -> Path:
    """The console shows handdiff's own lines (and anyone's errors); every library's lines go to
    a log file, ``default_log_dir()/<job>-<time>.log``, whose path is printed. ``verbose``: the
    console shows everything too. Returns the log file."""
    log_dir = default_log_dir()
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{job}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    to_file = logging.FileHandler(path)
    to_file.setFormatter(formatter)
    to_console = logging.StreamHandler()
    to_console.setFormatter(formatter)
    if not verbose:
        to_console.addFilter(_for_the_console)
        # (libraries' progress bars are off where the console is not a terminal: pipelines/__init__.py)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_handdiff", False)]:
        root.removeHandler(handler)
    for handler in (to_file, to_console):
        handler._handdiff = True
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    # Ray Data warns whenever a stage gets fewer blocks than its task limit: noise on small inputs
    warnings.filterwarnings("ignore", message="The maximum number of concurrent tasks", category=UserWarning)
    global _VERBOSE
    _VERBOSE = verbose
    print(f"{job}: full log in {path}" + ("" if verbose else " (--verbose shows it here too)"))
    return path


_VERBOSE = False
_QUIET = 0
WAIT_REPORTS = "handdiff.waits"
"""The logger of resource waits, which reach the console inside ``quiet()`` too: a wait is the outer job's business."""


def _for_the_console(record: logging.LogRecord) -> bool:
    """handdiff's own lines (outside ``quiet()``; resource waits always) and anyone's errors."""
    ours = record.name.startswith("handdiff") and (not _QUIET or record.name == WAIT_REPORTS)
    return ours or record.levelno >= logging.ERROR


@contextmanager
def quiet() -> Iterator[None]:
    """Inside, handdiff's own lines and prints go to the log file only (a job run as part of
    another, whose report is the outer job's); errors still reach the console."""
    global _QUIET
    from handdiff.tracking import LogStream

    out = LogStream(logging.getLogger("jobs.output"))
    _QUIET += 1
    try:
        with contextlib.redirect_stdout(out):
            yield
    finally:
        _QUIET -= 1


def route_ray_logs() -> None:
    """Ray's loggers print to the console themselves (their own handlers, no propagation): send
    them to the job's log file instead, unless ``--verbose``. Call after importing a Ray library."""
    if _VERBOSE:
        return
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_handdiff", False) and isinstance(h, logging.FileHandler)]
    if not ours:  # no job log file (a library use, a benchmark): leave Ray's logging as it is
        return
    for name in list(logging.Logger.manager.loggerDict):
        if name != "ray" and not name.startswith("ray."):
            continue
        logger = logging.getLogger(name)
        consoles = [h for h in logger.handlers if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
        for handler in consoles:
            logger.removeHandler(handler)
        if consoles and not logger.propagate:
            for handler in ours:
                logger.addHandler(handler)


def wants_verbose(argv: Sequence[str] | None) -> bool:
    return "--verbose" in (sys.argv[1:] if argv is None else argv)


def init_ray(cfg: RayConfig) -> None:
    """Connect to the configured cluster, or start a local instance; reuse one already up."""
    import ray
    import ray.data

    from pipelines import waits

    waits.REPORT_WAITS_AFTER_S = cfg.report_waits_after_s  # read by run_to_parts and training, which every job calls without its config
    if ray.is_initialized():
        route_ray_logs()
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    # workers' own output (Mediapipe's, TF Lite's) stays in Ray's session logs unless --verbose
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=_VERBOSE)
    else:
        # "local": always a new instance; a bare ray.init() would join whatever cluster this machine
        # advertises (a running `ray start --head`, or the stale file a killed head leaves behind)
        ray.init(
            address="local",
            num_cpus=cfg.num_cpus,
            object_store_memory=cfg.object_store_memory,
            include_dashboard=cfg.include_dashboard,
            logging_level=logging.WARNING,
            log_to_driver=_VERBOSE,
        )
    route_ray_logs()
