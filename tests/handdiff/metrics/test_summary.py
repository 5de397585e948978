"""Benchmark figures from per-image scores, with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from handdiff.assets.figures import person_keypoints
from handdiff.metrics.summary import METRICS, bootstrap_intervals, score_by, score_set


def rows(n: int = 8, shift: float = 0.0, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        target = person_keypoints(256, 30, 440, {"left": True, "right": True}, {"left": "palm", "right": "fist"}, rng)
        detected = target.copy()
        detected[:, :2] += shift
        features = rng.normal(size=192)
        out.append(
            {
                "target": target,
                "detected": detected,
                "size": 512,
                "clip_score": 20.0 + i,
                "gesture": "palm" if i % 2 else "fist",
                "real_features": features,
                "fake_features": features.copy(),
            }
        )
    return out


def test_a_perfect_method_scores_the_ceiling(tmp_path):
    figures = score_set(rows(), tmp_path)
    assert set(METRICS) <= set(figures)
    assert figures["dap"] == pytest.approx(1.0) and figures["dap_hands"] == pytest.approx(1.0)
    assert figures["mpjpe"] == 0 and figures["detection_rate"] == 1.0
    assert figures["clipsim"] == pytest.approx(23.5) and abs(figures["fid_fg"]) < 1e-3  # identical sets: 0 up to the matrix square root


def test_intervals_hold_the_estimate_and_groups_split_the_rows(tmp_path):
    data = rows(12, shift=2.0)
    figures = score_set(data, tmp_path / "all")
    intervals = bootstrap_intervals(data, tmp_path / "boot", resamples=20, seed=1)
    lo, hi = intervals["clipsim"]
    assert lo <= figures["clipsim"] <= hi and hi - lo > 0
    assert intervals["mpjpe"][0] == pytest.approx(2 * 2**0.5 / 512, rel=1e-5)  # every joint off by the same (2, 2) px
    groups = score_by(data, "gesture", tmp_path / "groups")
    assert set(groups) == {"fist", "palm"} and groups["fist"]["images"] == groups["palm"]["images"] == 6
    assert groups["palm"]["clipsim"] == pytest.approx(np.mean([r["clip_score"] for r in data if r["gesture"] == "palm"]))


def test_kid_uses_torchmetrics_subset_size_and_reports_its_std(tmp_path, monkeypatch):
    import torchmetrics.image.kid as kid_module

    sizes = []
    original = kid_module.KernelInceptionDistance.__init__

    def spy(self, *args, subset_size=1000, **kwargs):
        sizes.append(subset_size)
        original(self, *args, subset_size=subset_size, **kwargs)

    monkeypatch.setattr(kid_module.KernelInceptionDistance, "__init__", spy)
    data = rows(12)
    for r in data:
        r["fake_features"] = r["fake_features"] + np.random.default_rng(1).normal(0, 0.5, 192)
    every = score_set(data, tmp_path / "every")
    assert sizes == [12]  # torchmetrics' 1,000, capped at the set's size (not a subset of 50)
    assert every["kid_fg_std"] == 0 and np.isfinite(every["kid_fg"])  # every subset is the whole set: no spread
    subsets = score_set(data, tmp_path / "subsets", kid_subset=5)
    assert sizes[-1] == 5 and subsets["kid_fg_std"] > 0


def test_dap_scales_by_the_persons_area_and_whole_image_fid_is_its_own_figure(tmp_path):
    data = rows(8, shift=3.0)
    for r in data:
        r["person_area"] = 512.0 * 512.0  # the person fills the frame
    hand_box = score_set(data, tmp_path / "small", oks_area="part_box")
    large = score_set(data, tmp_path / "large")
    assert large["dap_hands"] > hand_box["dap_hands"]  # the same 4 px weigh less against the person than against the hands' box
    for r in data:
        r["person_area"] = 64.0 * 64.0  # a person this small: the same error weighs more
    assert score_set(data, tmp_path / "tiny")["dap"] < large["dap"]
    assert np.isnan(large["fid"])  # rows without whole-image features have no whole-image FID
    rng = np.random.default_rng(2)
    for r in data:
        r["real_image_features"] = rng.normal(size=192)
        r["fake_image_features"] = r["real_image_features"] + 3.0
    whole = score_set(data, tmp_path / "whole")
    assert whole["fid"] > 1.0 and whole["fid_fg"] == pytest.approx(large["fid_fg"])  # foreground FID untouched


def test_paired_differences_over_shared_resamples(tmp_path):
    """Every method is scored on the same conditions, so the same draws serve all: identical
    methods differ by exactly 0; a method whose keypoints are off by 6 px is worse, and the
    paired interval says so."""
    from handdiff.metrics.summary import evaluate, paired_differences, resampled_figures

    ours, same, shifted = rows(12, seed=4), rows(12, seed=4), rows(12, shift=6.0, seed=4)
    for data in (ours, same, shifted):
        for i, r in enumerate(data):
            r["image_id"] = f"img{i:02d}"
    ids = [r["image_id"] for r in ours]
    samples = {
        name: resampled_figures(evaluate(data, tmp_path / name), ids, resamples=30, seed=7)
        for name, data in (("ours", ours), ("same", same), ("shifted", shifted))
    }
    identical = paired_differences(samples["ours"], samples["same"])
    assert all(diff == lo == hi == 0 for diff, lo, hi in identical.values())
    versus = paired_differences(samples["ours"], samples["shifted"])
    assert versus["mpjpe"][2] < 0 and versus["mpjpe_hands"][2] < 0  # ours lower, every resample
    assert versus["dap_hands"][1] > 0  # ours higher
    assert versus["clipsim"] == (0.0, 0.0, 0.0)  # the same captions and scores
    missing = resampled_figures(evaluate(ours[:6], tmp_path / "half"), ids, resamples=30, seed=7)
    assert all(len(v) == 30 for v in missing.values())  # conditions a method has no row for drop out of its resamples


def test_resamples_spread_over_processes_give_the_same_figures(tmp_path):
    from handdiff.metrics.summary import MIN_RESAMPLES_PER_WORKER, evaluate, resampled_figures

    data = rows(10, shift=2.0, seed=5)
    evaluation = evaluate(data, tmp_path)
    ids = [f"#{i}" for i in range(10)]
    n = 2 * MIN_RESAMPLES_PER_WORKER  # enough for two workers
    alone, spread = resampled_figures(evaluation, ids, n, seed=2), resampled_figures(evaluation, ids, n, seed=2, workers=2)
    assert sorted(alone) == sorted(spread)
    for key in alone:  # FID's matrix products and eigenvalues round differently with fewer threads (FID near 0 here:
        tolerance = 1e-4 if key.startswith("fid") else 1e-12  # seen up to 5e-6 apart on a loaded 2-core machine)
        np.testing.assert_allclose(alone[key], spread[key], rtol=1e-9, atol=tolerance, err_msg=key)


def test_resamples_without_the_whole_image_fid_leave_every_other_figure_as_it_was(tmp_path):
    from handdiff.metrics.summary import evaluate, resampled_figures

    data = rows(10, shift=2.0, seed=6)
    rng = np.random.default_rng(3)
    for r in data:
        r["real_image_features"] = rng.normal(size=192)
        r["fake_image_features"] = r["real_image_features"] + rng.normal(0.5, 1.0, 192)
    evaluation = evaluate(data, tmp_path)
    ids = [f"#{i}" for i in range(10)]
    every, shown = resampled_figures(evaluation, ids, 20, seed=3), resampled_figures(evaluation, ids, 20, seed=3, whole=False)
    assert "fid" in every and np.isfinite(every["fid"]).all() and set(shown) == set(every) - {"fid"}
    for key in shown:
        np.testing.assert_array_equal(shown[key], every[key], err_msg=key)
