"""The code version written beside every row (handdiff.provenance)."""

from __future__ import annotations

import re
import subprocess
import sys

from handdiff import __version__

CODE = "from handdiff.provenance import code_version; print(code_version())"


def version_in_a_fresh_process(**env: str) -> str:
    return subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_a_checkout_is_known_by_its_commit_and_an_image_by_what_it_was_given():
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert re.fullmatch(rf"{re.escape(__version__)}\+g{commit}(\.dirty)?", version_in_a_fresh_process())
    assert version_in_a_fresh_process(HANDDIFF_CODE_VERSION="1.2.3+gabc") == "1.2.3+gabc"
