"""Pose accuracy of generated images: detected keypoints against the conditioning ones.

**DAP**: COCO keypoint AP (mean over OKS thresholds 0.50:0.05:0.95) computed by xtcocotools'
``COCOeval`` from COCO-format files, never by hand: whole body with the 133 COCO-WholeBody
sigmas, hands with the 42 hand sigmas. The OKS scale (the ground truth's ``area``) is the
**person's** area for every part, hands included, as COCO-WholeBody's own evaluation divides
by ``gt['area']``, the person annotation's segment area, in every part's ``computeOks``
(``jin-s13/COCO-WholeBody``, ``evaluation/myeval_lefthand.py`` and its siblings, the ``e = ...
/ (gt['area'] + np.spacing(1)) / 2`` line): the real person's SAM mask area where the benchmark
set has one, else the area of the box around the target's visible keypoints
(``oks_area="person"``). ``oks_area="part_box"`` (not the reference convention, named in the
tables when used) scales each part by the box around its own visible keypoints. A target with
no visible keypoint in the part is not evaluated; an image without a detection counts as a
miss, and so does every point a detection does not hold (score 0): its position is put far
outside the image, because ``computeOks`` measures every detected coordinate whatever its score.

**MPJPE**: the mean distance between detected and target joints, in coordinates divided by
the image size, over joints visible in the target and detected; the detection rate (the
share of target-visible joints that were detected) is reported beside it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Literal

import numpy as np

from handdiff.data import keypoints as kp

# COCO-WholeBody's OKS sigmas (body 17, feet 6, face 68, left hand 21, right hand 21), as in its
# evaluation code (myeval_wholebody.py) and mmpose's coco_wholebody dataset info.
_BODY = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089]
_FOOT = [0.068, 0.066, 0.066, 0.092, 0.094, 0.094]
_FACE = [
    0.042,
    0.043,
    0.044,
    0.043,
    0.040,
    0.035,
    0.031,
    0.025,
    0.020,
    0.023,
    0.029,
    0.032,
    0.037,
    0.038,
    0.043,
    0.041,
    0.045,
    0.013,
    0.012,
    0.011,
    0.011,
    0.012,
    0.012,
    0.011,
    0.011,
    0.013,
    0.015,
    0.009,
    0.007,
    0.007,
    0.007,
    0.012,
    0.009,
    0.008,
    0.016,
    0.010,
    0.017,
    0.011,
    0.009,
    0.011,
    0.009,
    0.007,
    0.013,
    0.008,
    0.011,
    0.012,
    0.010,
    0.034,
    0.008,
    0.008,
    0.009,
    0.008,
    0.008,
    0.007,
    0.010,
    0.008,
    0.009,
    0.009,
    0.009,
    0.007,
    0.007,
    0.008,
    0.011,
    0.008,
    0.008,
    0.008,
    0.01,
    0.008,
]
_HAND = [
    0.029,
    0.022,
    0.035,
    0.037,
    0.047,
    0.026,
    0.025,
    0.024,
    0.035,
    0.018,
    0.024,
    0.022,
    0.026,
    0.017,
    0.021,
    0.021,
    0.032,
    0.02,
    0.019,
    0.022,
    0.031,
]
WHOLEBODY_SIGMAS = np.array(_BODY + _FOOT + _FACE + _HAND + _HAND)
Part = Literal["wholebody", "hands"]
PARTS: dict[str, slice] = {"wholebody": slice(0, kp.NUM_KEYPOINTS), "hands": kp.HANDS}
OksArea = Literal["person", "part_box"]
UNSEEN_XY = -1e4
"""Where a point a detection does not hold is placed for ``computeOks``: far enough outside any
image that its OKS term is exactly 0."""


def sigmas(part: Part) -> np.ndarray:
    return WHOLEBODY_SIGMAS[PARTS[part]]


def _box(points: np.ndarray) -> list[float]:
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def _box_area(points: np.ndarray) -> float:
    box = _box(points)
    return max(box[2] * box[3], 1.0)


def oks_areas(targets: list[np.ndarray], person_areas: list[float | None] | None, part: Part, oks_area: OksArea = "person") -> list[float]:
    """Per image, the OKS scale of ``part`` (see the module docstring): the person's area
    (``person_areas``, px^2; the box of the target's visible keypoints where it is None) or,
    for ``part_box``, the box of the part's visible keypoints."""
    areas = []
    for i, target in enumerate(targets):
        t = np.asarray(target, np.float32)
        points = t[PARTS[part]] if oks_area == "part_box" else t
        visible = points[:, 2] > 0
        person = person_areas[i] if person_areas is not None and oks_area == "person" else None
        areas.append(float(person) if person else (_box_area(points[visible, :2]) if visible.any() else 1.0))
    return areas


def coco_files(
    targets: list[np.ndarray], detections: list[np.ndarray | None], part: Part, directory: str | Path, areas: list[float] | None = None
) -> tuple[Path, Path, int]:
    """Write the ground truth and detections of ``part`` as COCO keypoint files (``gt.json``,
    ``dt.json``) for xtcocotools. ``targets``/``detections``: per image (133, 3) (x_px, y_px,
    score), a detection None when nothing was found; ``areas``: per image the OKS scale, px^2
    (``oks_areas``; default: the box of the part's visible target keypoints). Returns the paths
    and how many targets were evaluated (those with a visible keypoint in the part)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    areas = areas or oks_areas(targets, None, part, "part_box")
    names = [f"k{i}" for i in range(len(sigmas(part)))]
    images, annotations, results = [], [], []
    for i, (target, detection) in enumerate(zip(targets, detections, strict=True)):
        t = np.asarray(target, np.float32)[PARTS[part]]
        visible = t[:, 2] > 0
        if not visible.any():
            continue
        images.append({"id": i, "width": 1, "height": 1})
        annotations.append(
            {
                "id": i + 1,
                "image_id": i,
                "category_id": 1,
                "iscrowd": 0,
                "num_keypoints": int(visible.sum()),
                "bbox": _box(t[visible, :2]),
                "area": areas[i],
                "keypoints": np.column_stack([t[:, :2] * visible[:, None], visible * 2]).reshape(-1).tolist(),
            }
        )
        if detection is not None:
            d = np.array(detection, np.float32)[PARTS[part]]
            found = d[:, 2] > 0
            if found.any():
                d[~found, :2] = UNSEEN_XY
                results.append({"image_id": i, "category_id": 1, "keypoints": d.reshape(-1).tolist(), "score": float(d[found, 2].mean())})
    gt = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person", "keypoints": names, "skeleton": []}]}
    (directory / "gt.json").write_text(json.dumps(gt))
    (directory / "dt.json").write_text(json.dumps(results))
    return directory / "gt.json", directory / "dt.json", len(images)


class KeypointEvaluation:
    """xtcocotools' ``COCOeval`` of one part over a set of images, evaluated once: each image's
    OKS match is computed by ``evaluate`` (one target and at most one detection per image, so an
    image's match does not depend on the others), and ``ap(images)`` re-accumulates those
    per-image results (``COCOeval.accumulate`` over the chosen ``evalImgs``) for any subset or
    resample of the images, repeats included. That equals a fresh ``COCOeval`` on the chosen
    images (a test checks it). Only the "all" area range is evaluated: DAP is its AP.

    ``accumulate`` concatenates its per-image entries' arrays, each cut to ``maxDets`` detections,
    and sorts the detections stably by score (``xtcocotools/cocoeval.py``, ``accumulate``: the
    ``np.concatenate([e['dtScores'][0:maxDet] for e in E])`` lines). Every image here has at most
    one detection, so ``maxDets`` consecutive images packed into one entry concatenate to the same
    arrays in the same order with no detection cut: ``ap`` hands ``accumulate`` the chosen images
    in packs (a twentieth of the entries at the keypoint default of 20), the same result for a
    twentieth of its Python-level concatenation, which was most of a resample's time."""

    def __init__(self, gt_file: str | Path, dt_file: str | Path, part_sigmas: np.ndarray, images: int):
        """``images``: how many rows the files were written from (``coco_files``: image ``i`` has id ``i``)."""
        from xtcocotools.coco import COCO
        from xtcocotools.cocoeval import COCOeval

        gt = json.loads(Path(gt_file).read_text())
        self.position = np.full(images, -1, np.int64)
        self.position[[image["id"] for image in gt["images"]]] = np.arange(len(gt["images"]))
        detections = json.loads(Path(dt_file).read_text())
        self.evaluator = None
        if detections:
            with contextlib.redirect_stdout(io.StringIO()):  # COCO prints its progress and tables
                coco = COCO(str(gt_file))
                self.evaluator = COCOeval(coco, coco.loadRes(detections), "keypoints", sigmas=np.asarray(part_sigmas), use_area=True)
                self.evaluator.params.areaRng, self.evaluator.params.areaRngLbl = [self.evaluator.params.areaRng[0]], ["all"]
                self.evaluator.evaluate()
            # accumulate and summarize read only evalImgs and the params: drop the rest (the COCO
            # sets, OKS matrices), which would otherwise be held, and pickled to resampling workers
            self.evaluator.cocoGt = self.evaluator.cocoDt = None
            self.evaluator._gts = self.evaluator._dts = self.evaluator.ious = None
            self.evaluator.anno_file = None  # the ground truth's whole content, read by CrowdPose's get_type_result alone
            self._stack(self.evaluator.evalImgs)
            self.evaluator.evalImgs = None  # stacked: accumulate gets packs of it

    def _stack(self, entries: list[dict | None]) -> None:
        """The arrays ``accumulate`` reads, stacked once: the D detections' scores (D,), matches
        and ignore flags (T, D); per image position, the column of its detection (P,; -1 without
        one) and its target's ignore flag (P,)."""
        assert all(e is not None and len(e["gtIgnore"]) == 1 and len(e["dtScores"]) <= 1 for e in entries), (
            "one target, <= 1 detection per image"
        )
        found = [e for e in entries if len(e["dtScores"])]
        empty = np.zeros((len(self.evaluator._paramsEval.iouThrs), 0))
        self.scores = np.array([e["dtScores"][0] for e in found], np.float64)
        self.matches = np.concatenate([e["dtMatches"] for e in found], axis=1) if found else empty
        self.ignored = np.concatenate([e["dtIgnore"] for e in found], axis=1) if found else empty
        has = np.array([len(e["dtScores"]) > 0 for e in entries])
        self.detection_of = np.where(has, np.cumsum(has) - 1, -1)
        self.target_ignored = np.concatenate([e["gtIgnore"] for e in entries])

    def _packs(self, positions: np.ndarray) -> list[dict]:
        """The images at ``positions``, in order, as ``accumulate`` entries of ``maxDets`` images
        each (views into the chosen rows' arrays, gathered once)."""
        size = min(self.evaluator._paramsEval.maxDets)
        columns = self.detection_of[positions]
        found = columns >= 0
        starts = range(0, len(positions), size)
        ends = np.cumsum(np.add.reduceat(found.astype(np.int64), np.asarray(starts))).tolist()  # each pack's detections end here
        columns = columns[found]
        scores, matches, ignored = self.scores[columns], self.matches[:, columns], self.ignored[:, columns]
        targets = self.target_ignored[positions]
        return [
            {"dtScores": scores[a:b], "dtMatches": matches[:, a:b], "dtIgnore": ignored[:, a:b], "gtIgnore": targets[start : start + size]}
            for start, a, b in zip(starts, [0, *ends[:-1]], ends)
        ]

    def ap(self, images: np.ndarray | None = None) -> float:
        """AP (OKS 0.50:0.95) of the rows ``images`` (indices, repeats allowed; all when None); NaN
        when none of them has a visible target point in the part, 0 when nothing was detected."""
        positions = self.position if images is None else self.position[np.asarray(images, np.int64)]
        positions = positions[positions >= 0]
        if not len(positions):
            return float("nan")
        if self.evaluator is None:
            return 0.0
        whole = self.evaluator
        chosen = copy.copy(whole)
        params = copy.copy(whole._paramsEval)
        chosen.evalImgs = self._packs(positions)  # one category, one area range: [pack]; repeats stay repeats
        params.imgIds = list(range(len(chosen.evalImgs)))
        chosen.params, chosen._paramsEval = params, params
        with contextlib.redirect_stdout(io.StringIO()):
            chosen.accumulate()
            chosen.summarize()
        return max(float(chosen.stats[0]), 0.0)


def coco_keypoint_ap(gt_file: str | Path, dt_file: str | Path, part_sigmas: np.ndarray) -> float:
    """xtcocotools' keypoint AP (OKS 0.50:0.95) of the files, by a fresh ``COCOeval`` with its
    default parameters; 0 when nothing was detected."""
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval

    detections = json.loads(Path(dt_file).read_text())
    if not detections:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):  # COCO prints its progress and table
        gt = COCO(str(gt_file))
        evaluation = COCOeval(gt, gt.loadRes(detections), "keypoints", sigmas=np.asarray(part_sigmas), use_area=True)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return max(float(evaluation.stats[0]), 0.0)


def keypoint_evaluation(
    targets: list[np.ndarray],
    detections: list[np.ndarray | None],
    part: Part,
    directory: str | Path,
    person_areas: list[float | None] | None = None,
    oks_area: OksArea = "person",
) -> KeypointEvaluation:
    """The once-evaluated DAP of ``part`` over all rows (see the module docstring); the COCO files stay in ``directory``."""
    areas = oks_areas(targets, person_areas, part, oks_area)
    gt_file, dt_file, _ = coco_files(targets, detections, part, directory, areas)
    return KeypointEvaluation(gt_file, dt_file, sigmas(part), len(targets))


def keypoint_ap(
    targets: list[np.ndarray],
    detections: list[np.ndarray | None],
    part: Part,
    directory: str | Path,
    person_areas: list[float | None] | None = None,
    oks_area: OksArea = "person",
) -> float:
    """DAP of ``part`` (see the module docstring); the COCO files stay in ``directory``."""
    return keypoint_evaluation(targets, detections, part, directory, person_areas, oks_area).ap()


def joint_errors(targets: list[np.ndarray], detections: list[np.ndarray | None], sizes: list[int], part: Part) -> np.ndarray:
    """Per image, (sum of joint distances in image-size units, joints detected, joints visible in
    the target), over ``part``: (N, 3) float64, so that MPJPE and the detection rate of any subset
    or resample are sums of rows (``mpjpe_of``)."""
    out = np.zeros((len(targets), 3))
    for i, (target, detection, size) in enumerate(zip(targets, detections, sizes, strict=True)):
        t = np.asarray(target, np.float32)[PARTS[part]]
        visible = t[:, 2] > 0
        out[i, 2] = visible.sum()
        if detection is None:
            continue
        d = np.asarray(detection, np.float32)[PARTS[part]]
        both = visible & (d[:, 2] > 0)
        out[i, :2] = np.linalg.norm((d[both, :2] - t[both, :2]) / size, axis=1).sum(), both.sum()
    return out


def mpjpe_of(errors: np.ndarray, images: np.ndarray | None = None) -> tuple[float, float]:
    """(MPJPE, detection rate) of the rows ``images`` (repeats allowed; all when None) of ``joint_errors``."""
    total = (errors if images is None else errors[np.asarray(images, np.int64)]).sum(0)
    return (total[0] / total[1] if total[1] else float("nan")), (total[1] / total[2] if total[2] else float("nan"))


def mpjpe(targets: list[np.ndarray], detections: list[np.ndarray | None], sizes: list[int], part: Part) -> tuple[float, float]:
    """(MPJPE in image-size units, detection rate) over joints visible in the target (and, for
    the distance, detected). An image without a detection detects none of its joints."""
    return mpjpe_of(joint_errors(targets, detections, sizes, part))
