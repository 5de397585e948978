"""The paper's tables from benchmark figures: Table I (methods x metrics, with intervals) and
Table II (the blending ablation), as CSV and Markdown with the paper's published values beside,
and the conventions the figures follow written under each Markdown table.

Table I's KID is "mean ± std" (torchmetrics' subsets), as the paper prints it. Table II's FID is
the whole-image FID, as the paper's ("between the generated images and the originals"); our
foreground FID stands beside it, without a published value."""

from __future__ import annotations

import csv
import io
import math

from handdiff.metrics.summary import METRICS

PAPER_TABLE_I = {
    "SD": {
        "dap": 0.00,
        "dap_hands": 0.00,
        "mpjpe": 0.381,
        "mpjpe_hands": 0.469,
        "clipsim": 32.94,
        "fid_fg": 2.40,
        "kid_fg": 1.28,
        "kid_fg_std": 0.30,
    },
    "HandRefiner": {
        "dap": 0.00,
        "dap_hands": 0.00,
        "mpjpe": 0.380,
        "mpjpe_hands": 0.466,
        "clipsim": 32.95,
        "fid_fg": 2.33,
        "kid_fg": 1.17,
        "kid_fg_std": 0.28,
    },
    "T2I-Adapter": {
        "dap": 0.06,
        "dap_hands": 0.11,
        "mpjpe": 0.179,
        "mpjpe_hands": 0.216,
        "clipsim": 33.09,
        "fid_fg": 2.39,
        "kid_fg": 1.29,
        "kid_fg_std": 0.27,
    },
    "HumanSD": {
        "dap": 0.31,
        "dap_hands": 0.04,
        "mpjpe": 0.121,
        "mpjpe_hands": 0.236,
        "clipsim": 32.80,
        "fid_fg": 2.82,
        "kid_fg": 1.58,
        "kid_fg_std": 0.29,
    },
    "ControlNet": {
        "dap": 0.59,
        "dap_hands": 0.39,
        "mpjpe": 0.094,
        "mpjpe_hands": 0.135,
        "clipsim": 32.86,
        "fid_fg": 2.34,
        "kid_fg": 1.46,
        "kid_fg_std": 0.34,
    },
    "Paper's method": {
        "dap": 0.77,
        "dap_hands": 0.75,
        "mpjpe": 0.047,
        "mpjpe_hands": 0.081,
        "clipsim": 34.01,
        "fid_fg": 1.81,
        "kid_fg": 0.75,
        "kid_fg_std": 0.045,
    },
}
"""SPEC 7 / the paper's Table I (KID fg as mean and std)."""
PAPER_NAMES = {
    "sd15": "SD",
    "handrefiner": "HandRefiner",
    "t2i-adapter-openpose": "T2I-Adapter",
    "humansd": "HumanSD",
    "controlnet-openpose": "ControlNet",
    "handdiff": "Paper's method",
}
"""Our method names -> the paper's rows."""
PAPER_TABLE_II = {
    "bbox": {"fid": 16.46, "dap": 0.49, "mpjpe": 0.087},
    "naive": {"fid": 13.03, "dap": 0.58, "mpjpe": 0.062},
    "sme": {"fid": 12.13, "dap": 0.59, "mpjpe": 0.057},
}
"""The paper's Table II: its FID compares whole images ("between the generated images and the originals")."""
TABLE_II_METRICS = ("fid", "fid_fg", "dap", "mpjpe")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value: float | None, interval: tuple[float, float] | None = None, std: float | None = None) -> str:
    if _missing(value):
        return "-"
    text = f"{value:.3f}" + ("" if _missing(std) else f" ± {std:.3f}")
    return f"{text} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else text


def conventions_note(conventions: dict | None) -> str:
    """The line under a table that says how its figures were computed (``summary.conventions``)."""
    if not conventions:
        return ""
    if conventions.get("oks_area") == "part_box":
        oks = "DAP's OKS scaled by each part's own visible-keypoint box (hands: the hands' box), not COCO-WholeBody's person area"
    else:
        oks = "DAP's OKS scaled by the real person's mask area for every part, hands included (COCO-WholeBody's evaluation)"
    kid = f"KID over torchmetrics' subsets of min({conventions.get('kid_subset')}, n) images, mean ± std"
    seen = f"a detected body point counts at visibility >= {conventions.get('min_visibility')}, inside the image"
    return f"Conventions: {oks}; {kid}; {seen}."


def table_rows(
    results: dict[str, dict], paper: dict[str, dict], metrics: tuple[str, ...], paper_names: dict[str, str] | None = None
) -> list[dict]:
    """One row per entry of ``results`` (name -> {"method", "metrics", "intervals"}), with the
    paper's value beside each metric where the paper has that row."""
    rows = []
    for name, result in results.items():
        published = paper.get((paper_names or {}).get(result.get("method", name), name), {})
        row = {"name": name, "method": result.get("method", name)}
        for metric in metrics:
            row[metric] = result["metrics"].get(metric)
            row[f"{metric}_ci"] = result.get("intervals", {}).get(metric)
            row[f"{metric}_std"] = result["metrics"].get(f"{metric}_std")
            row[f"{metric}_paper"] = published.get(metric)
            row[f"{metric}_std_paper"] = published.get(f"{metric}_std")
        rows.append(row)
    return rows


def to_csv(rows: list[dict], metrics: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "method", *[f"{m}{suffix}" for m in metrics for suffix in ("", "_lo", "_hi", "_std", "_paper")]])
    for row in rows:
        cells = []
        for m in metrics:
            lo, hi = row[f"{m}_ci"] or (None, None)
            cells += [row[m], lo, hi, row.get(f"{m}_std"), row[f"{m}_paper"]]
        writer.writerow([row["name"], row["method"], *["" if c is None else c for c in cells]])
    return out.getvalue()


def to_markdown(rows: list[dict], metrics: tuple[str, ...], title: str, conventions: dict | None = None) -> str:
    """Ours with its 95 % interval, then the paper's value in parentheses; ``conventions``
    (``summary.conventions``) are written under the table."""
    lines = [f"### {title}", "", "| method | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for row in rows:
        cells = [
            f"{_cell(row[m], row[f'{m}_ci'], row.get(f'{m}_std'))} ({_cell(row[f'{m}_paper'], std=row.get(f'{m}_std_paper'))})"
            for m in metrics
        ]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    lines += ["", "Ours: value [95 % bootstrap interval] (the paper's published value; - where it has none)."]
    note = conventions_note(conventions)
    return "\n".join(lines + ([note] if note else [])) + "\n"


def deltas(current: list[dict], earlier: list[dict], metrics: tuple[str, ...] = METRICS) -> list[dict]:
    """Per name in both: each metric's change (current - earlier)."""
    before = {r["name"]: r for r in earlier}
    out = []
    for row in current:
        if row["name"] in before:
            out.append({"name": row["name"], **{m: _minus(row.get(m), before[row["name"]].get(m)) for m in metrics}})
    return out


def deltas_markdown(current: list[dict], earlier: list[dict], metrics: tuple[str, ...] = METRICS) -> str:
    """``deltas`` as a markdown table: a row per name in both, each metric's signed change ("-" where either side has none)."""
    lines = ["| method | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for d in deltas(current, earlier, metrics):
        lines.append(f"| {d['name']} | " + " | ".join("-" if d[m] is None else f"{d[m]:+.3f}" for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def _minus(a, b):
    try:
        return float(a) - float(b)
    except (TypeError, ValueError):
        return None


def read_csv_rows(text: str, metrics: tuple[str, ...] = METRICS) -> list[dict]:
    """Rows of a ``to_csv`` table (values only)."""
    return [
        {"name": r["name"], "method": r["method"], **{m: float(r[m]) if r[m] else None for m in metrics}}
        for r in csv.DictReader(io.StringIO(text))
    ]


def paired_markdown(
    differences: dict[str, dict[str, tuple[float, float, float]]], metrics: tuple[str, ...], title: str, reference: str
) -> str:
    """Per compared method, each metric's paired difference ``reference - method`` (median over the
    shared resamples) with its 95 % interval; ``*`` marks an interval that excludes 0 (the two rows
    are distinguishable on that metric)."""

    def cell(value: tuple[float, float, float] | None) -> str:
        if value is None:
            return "-"
        median, lo, hi = value
        return f"{median:+.3f} [{lo:+.3f}, {hi:+.3f}]" + ("*" if lo > 0 or hi < 0 else "")

    lines = [f"### {title}", "", "| method | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    lines += [f"| {name} | " + " | ".join(cell(d.get(m)) for m in metrics) + " |" for name, d in differences.items()]
    lines += [
        "",
        f"{reference} minus each method on the same bootstrap resamples of the same conditions: median [95 % interval]; "
        "* where the interval excludes 0. KID has no resamples (its own ± std is its spread).",
    ]
    return "\n".join(lines) + "\n"
