from __future__ import annotations

import pytest

from handdiff.metrics.summary import METRICS
from handdiff.metrics.tables import PAPER_NAMES, PAPER_TABLE_I, deltas, read_csv_rows, table_rows, to_csv, to_markdown


def results(shift: float = 0.0) -> dict:
    metrics = {m: 0.5 + shift for m in METRICS}
    return {"handdiff-sme": {"method": "handdiff", "metrics": metrics, "intervals": {m: (0.4, 0.6) for m in METRICS}},
            "oracle": {"method": "oracle", "metrics": {m: 1.0 for m in METRICS}, "intervals": {}}}  # fmt: skip


def test_table_one_puts_the_papers_values_beside_ours():
    rows = table_rows(results(), PAPER_TABLE_I, METRICS, PAPER_NAMES)
    ours = rows[0]
    assert ours["dap"] == 0.5 and ours["dap_ci"] == (0.4, 0.6) and ours["dap_paper"] == 0.77 and ours["fid_fg_paper"] == 1.81
    assert rows[1]["dap_paper"] is None  # the paper has no oracle row
    markdown = to_markdown(rows, METRICS, "Table I")
    assert "| handdiff-sme | 0.500 [0.400, 0.600] (0.770) |" in markdown and "| oracle | 1.000 (-) |" in markdown


def test_csv_round_trips_and_deltas_are_current_minus_earlier():
    rows = table_rows(results(0.1), PAPER_TABLE_I, METRICS, PAPER_NAMES)
    earlier = read_csv_rows(to_csv(table_rows(results(), PAPER_TABLE_I, METRICS, PAPER_NAMES), METRICS))
    assert earlier[0]["dap"] == 0.5
    (mine, oracle) = deltas(rows, earlier)
    assert mine["dap"] == pytest.approx(0.1) and oracle["dap"] == 0
