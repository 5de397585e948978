"""MLflow helpers shared by every job: one experiment per job kind, params from the
resolved config with secrets redacted, and restarts that continue their run.

The tracking URI comes from the caller (a config value), else ``MLFLOW_TRACKING_URI``,
else a local sqlite store under ``./mlruns`` (browse it with
``mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from handdiff.config import ConfigError, flatten

log = logging.getLogger(__name__)

DEFAULT_STORE_DIR = "mlruns"
REDACTED = "***"
# MLflow rejects param values longer than this.
MAX_PARAM_LENGTH = 6000

# a secret-naming word between separators: aws_secret_access_key, hf_token, db.password (not tokenizer_*)
_SECRET_KEY = re.compile(r"(^|[._-])(secret|password|passwd|token|credentials?|access_key|api_key|private_key)([._-]|$)", re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)


def default_tracking_uri(store_dir: str = DEFAULT_STORE_DIR) -> str:
    return f"sqlite:///{Path(store_dir).resolve() / 'mlflow.db'}"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The URI in use: ``uri``, else ``MLFLOW_TRACKING_URI``, else the local default store."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    return uri


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact(params: Mapping[str, Any]) -> dict[str, Any]:
    """Hide values whose key names a secret, and user:password@ parts of URLs."""
    out = {}
    for key, value in params.items():
        if is_secret_key(key) and value not in (None, ""):
            out[key] = REDACTED
        elif isinstance(value, str):
            out[key] = _URL_USERINFO.sub(rf"\g<scheme>{REDACTED}@", value)
        else:
            out[key] = value
    return out


def config_params(config: Mapping[str, Any]) -> dict[str, str]:
    """A nested config as flat, redacted MLflow params (``{"train.lr": "1e-05"}``)."""
    return {k: str(v)[:MAX_PARAM_LENGTH] for k, v in redact(flatten(config)).items()}


class RunConflict(ConfigError):
    """A run of this name exists with a different config: continuing it would mix two jobs."""


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, before any compute, when ``uri`` names an MLflow server that does not answer
    (MLflow's own client would retry for minutes, then fail after the work is done)."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answers: a proxy without /health, or an auth wall MLflow's client handles
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(
            f"tracking.tracking_uri: no MLflow server answers at {uri} ({reason}): "
            "start it, or set tracking.tracking_uri / MLFLOW_TRACKING_URI"
        ) from None


def config_conflicts(logged: Mapping[str, str], params: Mapping[str, str], resume_safe: Iterable[str] = ()) -> list[str]:
    """The keys whose value differs between a run's logged params and ``params`` (a key on one
    side only counts), except those matching a ``resume_safe`` pattern (``fnmatch``, e.g. ``ray.*``)."""
    patterns = tuple(resume_safe)
    return sorted(
        k for k in set(logged) | set(params) if logged.get(k) != params.get(k) and not any(fnmatch.fnmatchcase(k, p) for p in patterns)
    )


def conflict_message(experiment: str, run_name: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
    return (
        f"MLflow run {run_name!r} of experiment {experiment!r} was started with a different config ({shown}): "
        f"run it unchanged to resume it, or start another with tracking.run_name=<new name> or tracking.resume=false"
    )


def rerun_conflict(
    experiment: str, run_name: str, config: Mapping[str, Any], *, tracking_uri: str | None = None, resume_safe: Iterable[str] = ()
) -> str | None:
    """Why continuing ``run_name`` with ``config`` would not be a resume of the same job, or None;
    creates nothing (a check to run before the job starts)."""
    client = MlflowClient(resolve_tracking_uri(tracking_uri))
    experiment_obj = client.get_experiment_by_name(experiment)
    previous = find_run(client, experiment_obj.experiment_id, run_name) if experiment_obj else None
    if previous is None:
        return None
    keys = config_conflicts(previous.data.params, config_params(config), resume_safe)
    return conflict_message(experiment, run_name, keys) if keys else None


EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
"""The tag MLflow 3's UI reads to open an experiment on its model-training view (runs, metrics,
models) rather than the GenAI one (traces): every experiment of the jobs carries it."""


def get_or_create_experiment(client: MlflowClient, name: str) -> str:
    """The experiment's id, tagged as model training (``EXPERIMENT_KIND``); a local sqlite store
    keeps its artifacts beside the database."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        artifact_location = None
        uri = client.tracking_uri
        if uri.startswith("sqlite:///"):
            artifact_location = (Path(uri[len("sqlite:///") :]).parent / "artifacts" / name).as_uri()
        experiment_id = client.create_experiment(name, artifact_location=artifact_location, tags=dict([EXPERIMENT_KIND]))
    else:
        experiment_id = experiment.experiment_id
        if experiment.tags.get(EXPERIMENT_KIND[0]) is None:  # made before the tag, or by someone else
            client.set_experiment_tag(experiment_id, *EXPERIMENT_KIND)
    return experiment_id


def find_run(client: MlflowClient, experiment_id: str, run_name: str) -> Run | None:
    """The newest run called ``run_name`` in the experiment, if any."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.run_name = '{run_name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


@contextmanager
def tracked_run(
    experiment: str,
    run_name: str,
    config: Mapping[str, Any] | None = None,
    *,
    tracking_uri: str | None = None,
    resume: bool = True,
    tags: Mapping[str, str] | None = None,
    resume_safe: Iterable[str] = (),
) -> Iterator[mlflow.ActiveRun]:
    """Start (or, with ``resume``, continue) the run ``run_name`` of ``experiment``.

    A restarted job with the same run name continues its earlier run instead of
    opening a duplicate, provided it is the same job: a ``config`` that differs from
    the logged params in a key not matching ``resume_safe`` raises ``RunConflict``
    before the run is touched. A resume-safe key that changed keeps its first value in
    the params (MLflow params are immutable; the log says so). The run ends FAILED if
    the body raises.
    """
    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment_id = get_or_create_experiment(client, experiment)
    # the process may have another active experiment (a notebook's set_experiment, an earlier
    # job in the same process): continuing a run of this one must not trip over it
    mlflow.set_experiment(experiment_id=experiment_id)
    previous = find_run(client, experiment_id, run_name) if resume else None
    params = config_params(config) if config is not None else {}
    if previous is not None and config is not None and (keys := config_conflicts(previous.data.params, params, resume_safe)):
        raise RunConflict(conflict_message(experiment, run_name, keys))
    if previous is not None:
        log.info("continuing MLflow run %s (%s) in experiment %r", run_name, previous.info.run_id, experiment)
        active = mlflow.start_run(run_id=previous.info.run_id)
        logged = previous.data.params
    else:
        active = mlflow.start_run(experiment_id=experiment_id, run_name=run_name)
        logged = {}
    with active:
        if tags:
            mlflow.set_tags(dict(tags))
        if config is not None:
            changed = sorted(k for k, v in params.items() if k in logged and logged[k] != v)
            if changed:
                log.info("resume-safe settings changed since this run started (params keep the first values): %s", ", ".join(changed))
            new = {k: v for k, v in params.items() if k not in logged}
            # MLflow takes at most 100 params per call.
            items = list(new.items())
            for start in range(0, len(items), 100):
                mlflow.log_params(dict(items[start : start + 100]))
        yield active


def _param_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "long"), (float, "double"), (str, "string")):
        if isinstance(value, kind):
            return name
    raise TypeError(f"no MLflow param type for {value!r}")


def log_pipeline_model(artifacts: dict[str, str], name: str, module, registered_model: str | None):
    """Log model folders (``artifacts``: artifact name -> local folder) as an MLflow pyfunc model
    whose code is ``module``'s file (code, not a pickle), with ``module.PARAMS`` declared in its
    signature (MLflow drops undeclared params), and register it as ``registered_model``. Returns
    MLflow's ``ModelInfo`` (its ``registered_model_version``)."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    from handdiff.provenance import code_version

    params = ParamSchema([ParamSpec(key, _param_type(value), value) for key, value in module.PARAMS.items()])
    # MLflow prints its registration news ("Successfully registered model", "Created version") to
    # stderr itself (mlflow/utils/logging_utils.py, eprint): they become log records, out of the console
    with contextlib.redirect_stderr(LogStream(logging.getLogger("mlflow-registry"))):
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=module.__file__,
            artifacts=artifacts,
            signature=ModelSignature(params=params),
            pip_requirements=[f"handdiff=={code_version().split('+')[0]}"],
            registered_model_name=registered_model,
        )


class LogStream(io.TextIOBase):
    """A text stream whose lines become INFO records of ``logger`` (for libraries that print)."""

    def __init__(self, logger: logging.Logger):
        self.logger, self.pending = logger, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.logger.info(line)
        return len(text)
