"""`python -m benchmarks --help` explains the suites without running (or importing) them."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.__main__ import SUITES


def test_help_lists_every_suite_and_an_unknown_one_is_refused():
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for suite in SUITES:
        assert f"  {suite} " in out.stdout
    out = subprocess.run([sys.executable, "-m", "benchmarks", "readrs"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "unknown suite 'readrs'" in out.stderr
