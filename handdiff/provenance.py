"""What produced a dataset: the code version written beside every annotation."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from handdiff import __version__


@functools.cache
def code_version() -> str:
    """``<package version>+g<commit>[.dirty]`` from git where the code is a checkout,
    ``$HANDDIFF_CODE_VERSION`` where it is set (images, ``ray job submit`` copies),
    else the package version."""
    if env := os.environ.get("HANDDIFF_CODE_VERSION"):
        return env
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}{'.dirty' if dirty else ''}"
