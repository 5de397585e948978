"""One printed table per suite: each figure beside its baseline from the same run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Figure:
    suite: str
    case: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.value / self.baseline


def print_table(figures: list[Figure]) -> None:
    width = max(len(f.case) for f in figures)
    for f in figures:
        ratio = f"  {f.ratio:6.2f}x {f.baseline_name}" if f.ratio is not None else ""
        print(f"  {f.suite:<10} {f.case:<{width}}  {f.value:10.2f} {f.unit:<9}{ratio}")
