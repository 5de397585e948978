"""Ray entrypoints: one module per job, each ``main(argv)`` shaped alike
(parse config -> set up Ray, MLflow, storage -> run -> report).

Importing the package first checks that this Python has the project's dependencies: a job
started by another Python (a ``ray start --head`` run outside the venv makes every submitted
job's ``python`` that one) stops with one line naming it, instead of a traceback. It also
turns libraries' progress bars off where the console is not a terminal (below).
"""

import importlib.util
import os
import sys

_NEEDED = ("mlflow", "ray", "diffusers", "pydantic", "pyarrow")


def _check_python() -> None:
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"error: {sys.executable} lacks the project's dependencies (no {', '.join(missing)}): run jobs with the project's "
            "environment (.venv/bin/python, or `. .venv/bin/activate` first); under `ray job submit`, start the head from it "
            "(`.venv/bin/ray start --head`)",
            file=sys.stderr,
        )
        raise SystemExit(2)


def _no_progress_bars_off_a_terminal() -> None:
    """Progress bars (diffusers' "Loading pipeline components...", hub and MLflow downloads) are
    noise in a console that is not a terminal (a log file, ``ray job submit``'s stream): turn them
    off here, before anything imports tqdm, which reads its ``TQDM_*`` defaults once, at import
    (``tqdm/utils.py``, ``envwrap``), and mlflow imports it. (Ray workers' output stays in Ray's
    logs: jobs start Ray with ``log_to_driver=False``.)"""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


_check_python()
_no_progress_bars_off_a_terminal()
