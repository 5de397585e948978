"""A method's benchmark figures from its per-image scores: the paper's Table I metrics, bootstrap
95 % intervals (beyond the paper) and a breakdown by a column (e.g. gesture).

A per-image score row holds ``target`` and ``detected`` (133 x 3 keypoints; ``detected`` None
when nothing was found), ``size`` (pixels), ``person_area`` (px^2, the real person's mask; the
OKS scale), ``clip_score``, and the 192-d Inception features of the real and the generated
foregrounds (``real_features``, ``fake_features``) and whole images (``real_image_features``,
``fake_image_features``; Table II's FID, "between the generated images and the originals").

Conventions (``CONVENTIONS``, written beside every table): DAP's OKS scaled by the person's area
(COCO-WholeBody's), KID over torchmetrics' subsets of ``min(1000, n)`` with its std.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handdiff.data.keypoints import MIN_VISIBILITY
from handdiff.metrics.images import KID_SUBSET_SIZE, fid_from_features, fid_kid_from_features
from handdiff.metrics.keypoints import OksArea, keypoint_ap, mpjpe

METRICS = ("dap", "dap_hands", "mpjpe", "mpjpe_hands", "clipsim", "fid_fg", "kid_fg")
"""Table I's columns, in order."""


def _array(value) -> np.ndarray | None:
    return None if value is None else np.asarray(value, np.float32).reshape(133, 3)


def conventions(oks_area: OksArea = "person", kid_subset: int = KID_SUBSET_SIZE, min_visibility: float = MIN_VISIBILITY) -> dict:
    """How the figures were computed, for the tables: the OKS scale, KID's subset size and the
    detector's presence rule."""
    return {"oks_area": oks_area, "kid_subset": kid_subset, "min_visibility": min_visibility}


def score_set(rows: list[dict], directory: str | Path, kid_subset: int = KID_SUBSET_SIZE, oks_area: OksArea = "person") -> dict[str, float]:
    """Every metric of a set of per-image score rows (see the module docstring)."""
    directory = Path(directory)
    targets, detections = [_array(r["target"]) for r in rows], [_array(r["detected"]) for r in rows]
    sizes, areas = [int(r["size"]) for r in rows], [r.get("person_area") for r in rows]
    out = {"images": float(len(rows))}
    out["dap"] = keypoint_ap(targets, detections, "wholebody", directory / "wholebody", areas, oks_area)
    out["dap_hands"] = keypoint_ap(targets, detections, "hands", directory / "hands", areas, oks_area)
    out["mpjpe"], out["detection_rate"] = mpjpe(targets, detections, sizes, "wholebody")
    out["mpjpe_hands"], out["detection_rate_hands"] = mpjpe(targets, detections, sizes, "hands")
    out["clipsim"] = float(np.mean([r["clip_score"] for r in rows]))
    out["fid_fg"] = out["kid_fg"] = out["kid_fg_std"] = out["fid"] = float("nan")
    if len(rows) >= 2:
        fg = fid_kid_from_features(np.stack([r["real_features"] for r in rows]), np.stack([r["fake_features"] for r in rows]), kid_subset)
        out["fid_fg"], out["kid_fg"], out["kid_fg_std"] = fg["fid"], fg["kid"], fg["kid_std"]
        if all(r.get("real_image_features") is not None and r.get("fake_image_features") is not None for r in rows):
            out["fid"] = fid_from_features(np.stack([r["real_image_features"] for r in rows]), np.stack([r["fake_image_features"] for r in rows]))
    return out


def bootstrap_intervals(rows: list[dict], directory: str | Path, resamples: int = 100, seed: int = 0, kid_subset: int = KID_SUBSET_SIZE,
                        oks_area: OksArea = "person") -> dict[str, tuple[float, float]]:  # fmt: skip
    """Percentile bootstrap 95 % intervals of every metric: the images resampled with replacement
    ``resamples`` times and every metric recomputed on each resample."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for b in range(resamples):
        sample = [rows[i] for i in rng.integers(0, len(rows), len(rows))]
        for key, value in score_set(sample, Path(directory) / f"b{b}", kid_subset, oks_area).items():
            draws.setdefault(key, []).append(value)
    return {key: (float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5)))
            for key, v in draws.items() if key != "images" and not np.isnan(v).all()}  # fmt: skip


def score_by(rows: list[dict], column: str, directory: str | Path, kid_subset: int = KID_SUBSET_SIZE,
             oks_area: OksArea = "person") -> dict[str, dict[str, float]]:  # fmt: skip
    """``score_set`` per value of ``column`` (e.g. gesture)."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(str(row.get(column)), []).append(row)
    return {name: score_set(group, Path(directory) / f"{column}-{name}", kid_subset, oks_area) for name, group in sorted(groups.items())}
