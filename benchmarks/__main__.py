"""Run the benchmark suites: `python -m benchmarks [suite ...]` (all by default)."""

from __future__ import annotations

import importlib
import sys

from benchmarks.report import print_table

SUITES = ("readers", "annotate", "train_hand", "train_body", "generate", "score")


def main(argv: list[str]) -> int:
    for name in argv or SUITES:
        if name not in SUITES:
            print(f"unknown suite {name!r}; suites: {', '.join(SUITES)}", file=sys.stderr)
            return 2
        print(f"== {name}")
        print_table(importlib.import_module(f"benchmarks.{name}").run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
