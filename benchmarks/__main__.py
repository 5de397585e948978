"""Run the benchmark suites: `python -m benchmarks [suite ...]` (all by default).

Each suite prints its figures beside a baseline measured in the same run (same window,
same threads), as ratios; `make bench` runs them all."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from pathlib import Path

from benchmarks.report import print_table

SUITES = ("readers", "annotate", "train_hand", "train_body", "generate", "score", "benchmark_figures", "capacity")


def summary(suite: str) -> str:
    """The first line of a suite's docstring, read without importing it (torch, Ray)."""
    spec = importlib.util.find_spec(f"benchmarks.{suite}")
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="suites:\n" + "\n".join(f"  {name:<11} {summary(name)}" for name in SUITES),
    )
    parser.add_argument("suites", nargs="*", metavar="suite", help="suites to run (default: all)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.suites if name not in SUITES]
    if unknown:
        print(f"unknown suite {unknown[0]!r}; suites: {', '.join(SUITES)}", file=sys.stderr)
        return 2
    for name in args.suites or SUITES:
        print(f"== {name}")
        print_table(importlib.import_module(f"benchmarks.{name}").run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
