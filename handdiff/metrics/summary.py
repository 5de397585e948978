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

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from handdiff.data.keypoints import MIN_VISIBILITY
from handdiff.metrics.images import KID_SUBSET_SIZE, fid_from_features, kid_from_features
from handdiff.metrics.keypoints import KeypointEvaluation, OksArea, joint_errors, keypoint_evaluation, mpjpe_of

METRICS = ("dap", "dap_hands", "mpjpe", "mpjpe_hands", "clipsim", "fid_fg", "kid_fg")
"""Table I's columns, in order."""


def _array(value) -> np.ndarray | None:
    return None if value is None else np.asarray(value, np.float32).reshape(133, 3)


def conventions(oks_area: OksArea = "person", kid_subset: int = KID_SUBSET_SIZE, min_visibility: float = MIN_VISIBILITY) -> dict:
    """How the figures were computed, for the tables: the OKS scale, KID's subset size and the
    detector's presence rule."""
    return {"oks_area": oks_area, "kid_subset": kid_subset, "min_visibility": min_visibility}


@dataclass
class Evaluation:
    """One evaluation of a method's per-image score rows: every figure of any subset or resample
    of the rows comes from it (``figures``) without evaluating anything again. DAP re-accumulates
    xtcocotools' per-image matches (``KeypointEvaluation``), MPJPE sums per-image joint errors,
    CLIPSIM averages per-image scores, FID/KID take the chosen rows' features."""

    image_ids: list[str]
    keypoints: dict[str, KeypointEvaluation]
    """Per part (``wholebody``, ``hands``)."""
    errors: dict[str, np.ndarray]
    """Per part, ``joint_errors``: (N, 3)."""
    clip: np.ndarray
    """(N,) CLIP scores."""
    features: dict[str, tuple[np.ndarray, np.ndarray] | None]
    """``fg`` and ``whole``: (real, generated) Inception features, (N, 192) each; None where rows lack them."""


def evaluate(rows: list[dict], directory: str | Path, oks_area: OksArea = "person") -> Evaluation:
    """Evaluate ``rows`` once (see the module docstring); the COCO files stay under ``directory``."""
    directory = Path(directory)
    targets, detections = [_array(r["target"]) for r in rows], [_array(r["detected"]) for r in rows]
    sizes, areas = [int(r["size"]) for r in rows], [r.get("person_area") for r in rows]
    features: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    for name, real, fake in (("fg", "real_features", "fake_features"), ("whole", "real_image_features", "fake_image_features")):
        complete = bool(rows) and all(r.get(real) is not None and r.get(fake) is not None for r in rows)
        features[name] = tuple(np.stack([r[side] for r in rows]).astype(np.float64) for side in (real, fake)) if complete else None
    return Evaluation(
        image_ids=[str(r["image_id"]) if r.get("image_id") is not None else f"#{i}" for i, r in enumerate(rows)],
        keypoints={
            part: keypoint_evaluation(targets, detections, part, directory / part, areas, oks_area) for part in ("wholebody", "hands")
        },
        errors={part: joint_errors(targets, detections, sizes, part) for part in ("wholebody", "hands")},
        clip=np.asarray([r["clip_score"] for r in rows], np.float64),
        features=features,
    )


def figures(
    evaluation: Evaluation, images: np.ndarray | None = None, kid_subset: int = KID_SUBSET_SIZE, kid: bool = True
) -> dict[str, float]:
    """Every metric of the rows ``images`` (indices into the evaluated rows, repeats allowed; all
    when None). ``kid=False`` leaves KID out (NaN): its subsets make it the one costly figure."""
    chosen = np.arange(len(evaluation.clip)) if images is None else np.asarray(images, np.int64)
    out = {"images": float(len(chosen))}
    out["dap"], out["dap_hands"] = evaluation.keypoints["wholebody"].ap(chosen), evaluation.keypoints["hands"].ap(chosen)
    out["mpjpe"], out["detection_rate"] = mpjpe_of(evaluation.errors["wholebody"], chosen)
    out["mpjpe_hands"], out["detection_rate_hands"] = mpjpe_of(evaluation.errors["hands"], chosen)
    out["clipsim"] = float(evaluation.clip[chosen].mean()) if len(chosen) else float("nan")
    out["fid_fg"] = out["kid_fg"] = out["kid_fg_std"] = out["fid"] = float("nan")
    fg, whole = evaluation.features["fg"], evaluation.features["whole"]
    counts = np.bincount(chosen, minlength=len(evaluation.clip))  # FID from each distinct row once, weighted
    if len(chosen) >= 2 and fg is not None:
        out["fid_fg"] = fid_from_features(fg[0], fg[1], counts)
        if kid:
            distances = kid_from_features(fg[0][chosen], fg[1][chosen], kid_subset)
            out["kid_fg"], out["kid_fg_std"] = distances["kid"], distances["kid_std"]
    if len(chosen) >= 2 and whole is not None:
        out["fid"] = fid_from_features(whole[0], whole[1], counts)
    return out


def score_set(rows: list[dict], directory: str | Path, kid_subset: int = KID_SUBSET_SIZE, oks_area: OksArea = "person") -> dict[str, float]:
    """Every metric of a set of per-image score rows (see the module docstring)."""
    return figures(evaluate(rows, directory, oks_area), kid_subset=kid_subset)


def resample_draws(image_ids: list[str], resamples: int, seed: int = 0) -> np.ndarray:
    """(resamples, N) bootstrap draws: positions in ``sorted(image_ids)``, the same for every
    method scored on the same conditions with the same seed (paired comparisons)."""
    return np.random.default_rng(seed).integers(0, len(image_ids), (resamples, len(image_ids)))


def resampled_figures(
    evaluation: Evaluation, condition_ids: list[str], resamples: int, seed: int = 0, workers: int = 1, whole: bool = True
) -> dict[str, np.ndarray]:
    """Each metric on each bootstrap resample of the conditions: {metric: (resamples,)}. The draws
    are over the sorted ``condition_ids`` (the same for every method of a benchmark); a drawn
    condition the method has no row for is left out of that resample. KID is left out: its own
    std over torchmetrics' subsets is its spread, and recomputing its subsets per resample would
    cost more than everything else together. ``whole=False`` leaves out the whole-image FID too
    (Table II's; Table I shows the foregrounds'), a third of a resample's time. ``workers`` > 1
    spreads the resamples over that many processes (each receives the evaluation once)."""
    if not whole:
        evaluation = replace(evaluation, features={**evaluation.features, "whole": None})
    ordered = sorted(condition_ids)
    row_of = {image_id: i for i, image_id in enumerate(evaluation.image_ids)}
    index = np.asarray([row_of.get(image_id, -1) for image_id in ordered], np.int64)
    draws = [index[draw] for draw in resample_draws(ordered, resamples, seed)]  # rows, -1 for conditions without one
    workers = min(workers, len(draws) // MIN_RESAMPLES_PER_WORKER)  # a spawned worker imports torch: seconds before its first resample
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        chunks = np.array_split(np.arange(len(draws)), workers)
        context = multiprocessing.get_context("spawn")  # torch's thread pools do not survive a fork
        threads = max(1, torch.get_num_threads() // workers)  # the workers share the cores: no oversubscribed spinning
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_hold, initargs=(evaluation, threads)) as pool:
            parts = list(pool.map(_figures_of_draws, [[draws[i] for i in chunk] for chunk in chunks]))
        per_resample = [figures_row for part in parts for figures_row in part]
    else:
        per_resample = _figures_of(evaluation, draws)
    out: dict[str, list[float]] = {}
    for row in per_resample:
        for key, value in row.items():
            out.setdefault(key, []).append(value)
    left_out = ("images", "kid_fg", "kid_fg_std") + (() if whole else ("fid",))
    return {key: np.asarray(values) for key, values in out.items() if key not in left_out}


def _figures_of(evaluation: Evaluation, draws: list[np.ndarray]) -> list[dict[str, float]]:
    return [figures(evaluation, rows[rows >= 0], kid=False) for rows in draws]


MIN_RESAMPLES_PER_WORKER = 100
"""Fewer resamples than this per worker are done in this process: spawning costs more than they do."""

_HELD: list[Evaluation] = []


def _hold(evaluation: Evaluation, threads: int) -> None:
    """A resampling worker's initializer: keep the evaluation it received, use its share of the
    cores (torch's threads and numpy's BLAS, which FID's products run on)."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    _HELD[:] = [evaluation]


def _figures_of_draws(draws: list[np.ndarray]) -> list[dict[str, float]]:
    return _figures_of(_HELD[0], draws)


def percentile_intervals(samples: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Percentile 95 % intervals of per-resample values; metrics that are NaN in every resample are left out."""
    return {key: (float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))) for key, v in samples.items() if not np.isnan(v).all()}


def bootstrap_intervals(
    rows: list[dict],
    directory: str | Path,
    resamples: int = 100,
    seed: int = 0,
    kid_subset: int = KID_SUBSET_SIZE,
    oks_area: OksArea = "person",
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap 95 % intervals of every metric but KID, from one evaluation of ``rows``
    resampled ``resamples`` times (``resampled_figures``)."""
    evaluation = evaluate(rows, directory, oks_area)
    return percentile_intervals(resampled_figures(evaluation, evaluation.image_ids, resamples, seed))


def paired_differences(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> dict[str, tuple[float, float, float]]:
    """Per metric, (median, 2.5 %, 97.5 %) of ``ours - theirs`` over the same resamples
    (``resampled_figures`` of two methods with the same condition ids and seed): an interval
    that excludes 0 separates the two rows."""
    out = {}
    for key in ours.keys() & theirs.keys():
        difference = ours[key] - theirs[key]
        if not np.isnan(difference).all():
            out[key] = (
                float(np.nanmedian(difference)),
                float(np.nanpercentile(difference, 2.5)),
                float(np.nanpercentile(difference, 97.5)),
            )
    return out


def score_by(
    rows: list[dict],
    column: str,
    directory: str | Path,
    kid_subset: int = KID_SUBSET_SIZE,
    oks_area: OksArea = "person",
    evaluation: Evaluation | None = None,
) -> dict[str, dict[str, float]]:
    """``figures`` per value of ``column`` (e.g. gesture), each group a subset of one evaluation."""
    evaluation = evaluation or evaluate(rows, directory, oks_area)
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(str(row.get(column)), []).append(i)
    return {name: figures(evaluation, np.asarray(group), kid_subset) for name, group in sorted(groups.items())}


def write_resamples(samples: dict[str, np.ndarray], uri: str) -> None:
    """Each metric per resample (``resampled_figures``) as a Parquet file, a column per metric."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from handdiff import storage

    buffer = io.BytesIO()
    pq.write_table(pa.table({key: pa.array(values, pa.float64()) for key, values in sorted(samples.items())}), buffer)
    storage.write_bytes(uri, buffer.getvalue())


def read_resamples(uri: str) -> dict[str, np.ndarray]:
    """``write_resamples``' file back: {metric: (resamples,)}."""
    from handdiff.data.parts import read_part

    table = read_part(uri)
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
