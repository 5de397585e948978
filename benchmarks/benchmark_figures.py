"""The benchmark's figures at paper scale: 12,000 synthetic score rows, one evaluation against
1,000 bootstrap resamples and the per-gesture breakdown taken from it, and the per-resample cost
of recomputing everything (the way intervals were made before), in seconds.

Rows: 133 keypoints each, 10 % of the images undetected, detections off by a few pixels, 192-d
features, 18 gestures, a person area each (``BENCHMARK_FIGURES_ROWS`` scales it down for a quick
look). The baseline of every ratio is the one plain evaluation (Table I's figures, KID included).
The resamples are of Table I's figures, as the benchmark draws them for Table I; Table II's rows
also resample the whole-image FID, timed on its own line.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from benchmarks.report import Figure
from handdiff.assets.figures import person_keypoints
from handdiff.metrics.summary import evaluate, figures, resampled_figures, score_by, score_set

ROWS = int(os.environ.get("BENCHMARK_FIGURES_ROWS", 12_000))
RESAMPLES, GESTURES, OLD_RESAMPLES = 1_000, 18, 2


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        target = person_keypoints(
            256 + rng.uniform(-30, 30), 30, 440, {"left": True, "right": True}, {"left": "palm", "right": "fist"}, rng
        )
        detected = None
        if rng.random() >= 0.1:
            detected = target.copy()
            detected[:, :2] += rng.normal(0, 3, (133, 2))
        features = rng.normal(size=192)
        out.append(
            {
                "image_id": f"img{i:06d}",
                "target": target,
                "detected": detected,
                "size": 512,
                "person_area": 60_000.0,
                "clip_score": float(rng.normal(30, 2)),
                "gesture": f"g{i % GESTURES}",
                "real_features": features,
                "fake_features": features + rng.normal(0, 0.3, 192),
                "real_image_features": features,
                "fake_image_features": features + rng.normal(0, 0.5, 192),
            }
        )
    return out


def run() -> list[Figure]:
    rows = synthetic_rows(ROWS)
    ids = [r["image_id"] for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        evaluation = evaluate(rows, f"{tmp}/once")
        figures(evaluation)
        plain = time.perf_counter() - start
        start = time.perf_counter()
        resampled_figures(evaluation, ids, RESAMPLES, seed=0, workers=os.cpu_count() or 1, whole=False)  # Table I's figures
        resampling = time.perf_counter() - start
        start = time.perf_counter()
        resampled_figures(evaluation, ids, RESAMPLES, seed=0, workers=os.cpu_count() or 1)
        with_whole = time.perf_counter() - start
        start = time.perf_counter()
        score_by(rows, "gesture", f"{tmp}/by", evaluation=evaluation)
        breakdown = time.perf_counter() - start
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for b in range(OLD_RESAMPLES):  # before: every resample evaluated again from its rows
            score_set([rows[i] for i in rng.integers(0, ROWS, ROWS)], f"{tmp}/old{b}")
        old = (time.perf_counter() - start) / OLD_RESAMPLES
    label = f"{ROWS:,} rows"
    return [
        Figure("figures", f"{label}: one evaluation (Table I, KID included)", plain, "s"),
        Figure(
            "figures", f"{label}: {RESAMPLES:,} resamples from it ({os.cpu_count()} processes)", resampling, "s", plain, "of one evaluation"
        ),
        Figure("figures", f"{label}: per-gesture breakdown from it ({GESTURES} groups)", breakdown, "s", plain, "of one evaluation"),
        Figure("figures", f"{label}: all of it", plain + resampling + breakdown, "s", plain, "of one evaluation"),
        Figure(
            "figures",
            f"{label}: {RESAMPLES:,} resamples with the whole-image FID (Table II's)",
            with_whole,
            "s",
            plain,
            "of one evaluation",
        ),
        Figure("figures", f"{label}: one resample evaluated again (before)", old, "s", plain, "of one evaluation"),
    ]
