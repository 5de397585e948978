"""Ray entrypoints: one module per job, each ``main(argv)`` shaped alike
(parse config -> set up Ray, MLflow, storage -> run -> report).

Importing the package first checks that this Python has the project's dependencies: a job
started by another Python (a ``ray start --head`` run outside the venv makes every submitted
job's ``python`` that one) stops with one line naming it, instead of a traceback.
"""

import importlib.util
import sys

_NEEDED = ("mlflow", "ray", "diffusers", "pydantic", "pyarrow")


def _check_python() -> None:
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: {sys.executable} lacks the project's dependencies (no {', '.join(missing)}): run jobs with the project's "
              "environment (.venv/bin/python, or `. .venv/bin/activate` first); under `ray job submit`, start the head from it "
              "(`.venv/bin/ray start --head`)", file=sys.stderr)  # fmt: skip
        raise SystemExit(2)


_check_python()
