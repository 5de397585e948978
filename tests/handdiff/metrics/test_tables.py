from __future__ import annotations

import pytest

from handdiff.metrics.summary import METRICS, conventions
from handdiff.metrics.tables import (
    PAPER_NAMES,
    PAPER_TABLE_I,
    PAPER_TABLE_II,
    TABLE_II_METRICS,
    deltas,
    deltas_markdown,
    read_csv_rows,
    table_rows,
    to_csv,
    to_markdown,
)


def results(shift: float = 0.0) -> dict:
    metrics = {m: 0.5 + shift for m in METRICS}
    return {
        "handdiff-sme": {"method": "handdiff", "metrics": metrics, "intervals": {m: (0.4, 0.6) for m in METRICS}},
        "oracle": {"method": "oracle", "metrics": {m: 1.0 for m in METRICS}, "intervals": {}},
    }


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
    markdown = deltas_markdown([{"name": "handdiff-sme", "dap": 0.6, "fid_fg": None}, {"name": "new"}], earlier, ("dap", "fid_fg"))
    assert markdown.splitlines() == [
        "| method | dap | fid_fg |",
        "|---|---|---|",
        "| handdiff-sme | +0.100 | - |",
    ]  # a method only now: no row


def test_kid_is_mean_plus_minus_std_as_the_paper_prints_it():
    result = results()
    result["handdiff-sme"]["metrics"]["kid_fg_std"] = 0.02
    (ours, _) = table_rows(result, PAPER_TABLE_I, METRICS, PAPER_NAMES)
    markdown = to_markdown([ours], METRICS, "Table I")
    assert "0.500 ± 0.020 [0.400, 0.600] (0.750 ± 0.045)" in markdown  # ours, then the paper's 0.75 ± 0.045


def test_table_two_puts_the_papers_whole_image_fid_beside_ours_and_fid_fg_beside_it():
    ablation = {s: {"method": "handdiff", "metrics": {"fid": 10.0, "fid_fg": 5.0, "dap": 0.5, "mpjpe": 0.06}} for s in ("bbox", "sme")}
    rows = table_rows(ablation, PAPER_TABLE_II, TABLE_II_METRICS)
    assert TABLE_II_METRICS[:2] == ("fid", "fid_fg")
    assert rows[1]["fid_paper"] == 12.13 and rows[1]["fid_fg_paper"] is None  # the paper compares whole images


@pytest.mark.parametrize("oks_area, named", [("person", "person's mask area"), ("part_box", "not COCO-WholeBody's person area")])
def test_the_tables_say_which_conventions_their_figures_follow(oks_area, named):
    rows = table_rows(results(), PAPER_TABLE_I, METRICS, PAPER_NAMES)
    markdown = to_markdown(rows, METRICS, "Table I", conventions(oks_area, 1000, 0.5))
    note = markdown.strip().splitlines()[-1]
    assert note.startswith("Conventions:") and named in note and "min(1000, n)" in note and "visibility >= 0.5" in note
