"""Keypoint metrics with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from xtcocotools.coco import COCO
from xtcocotools.cocoeval import COCOeval

from handdiff.assets.figures import person_keypoints
from handdiff.data import keypoints as kp
from handdiff.metrics.keypoints import WHOLEBODY_SIGMAS, keypoint_ap, mpjpe, sigmas


def people(n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [person_keypoints(256 + rng.uniform(-40, 40), 30, 440, {"left": True, "right": False}, {"left": "palm", "right": "fist"}, rng)
            for _ in range(n)]  # fmt: skip


def test_sigmas_are_coco_wholebody():
    assert WHOLEBODY_SIGMAS.shape == (133,) and sigmas("hands").shape == (42,)
    assert WHOLEBODY_SIGMAS[0] == 0.026 and WHOLEBODY_SIGMAS[17] == 0.068 and WHOLEBODY_SIGMAS[91] == 0.029 == WHOLEBODY_SIGMAS[112]


def test_perfect_detections_score_ap_one_and_zero_error(tmp_path):
    targets = people()
    assert keypoint_ap(targets, [t.copy() for t in targets], "wholebody", tmp_path / "wb") == pytest.approx(1.0)
    assert keypoint_ap(targets, [t.copy() for t in targets], "hands", tmp_path / "hands") == pytest.approx(1.0)
    assert mpjpe(targets, targets, [512] * 6, "wholebody") == (0.0, 1.0)


def test_a_known_shift_gives_the_known_mpjpe_and_lowers_ap(tmp_path):
    targets = people()
    shifted = [t.copy() for t in targets]
    for s in shifted:
        s[:, :2] += (3.0, 4.0)  # 5 px
    error, rate = mpjpe(targets, shifted, [500] * 6, "hands")
    assert error == pytest.approx(5 / 500) and rate == 1.0
    further = [t.copy() for t in targets]
    for s in further:
        s[:, :2] += (12.0, 16.0)  # 20 px
    for part in ("wholebody", "hands"):
        near, far = keypoint_ap(targets, shifted, part, tmp_path / f"{part}5"), keypoint_ap(targets, further, part, tmp_path / f"{part}20")
        assert far < near < 1.0, part


def test_missed_images_and_joints_count_against_detection(tmp_path):
    targets = people(4)
    detections = [targets[0].copy(), None, targets[2].copy(), targets[3].copy()]
    detections[2][kp.LEFT_HAND, 2] = 0  # the hand not found
    error, rate = mpjpe(targets, detections, [512] * 4, "hands")
    visible = sum(int((t[kp.HANDS, 2] > 0).sum()) for t in targets)
    found = visible - int((targets[1][kp.HANDS, 2] > 0).sum()) - int((targets[2][kp.LEFT_HAND, 2] > 0).sum())
    assert error == 0.0 and rate == pytest.approx(found / visible)
    assert keypoint_ap(targets, detections, "wholebody", tmp_path / "a") < 1.0
    assert keypoint_ap(targets, [None] * 4, "wholebody", tmp_path / "b") == 0.0


def test_the_scorer_equals_a_direct_xtcocotools_call_on_its_files(tmp_path):
    targets = people()
    rng = np.random.default_rng(1)
    detections = [t + np.column_stack([rng.normal(0, 6, (133, 2)), np.zeros(133)]).astype(np.float32) for t in targets]
    ours = keypoint_ap(targets, detections, "wholebody", tmp_path)
    gt = COCO(str(tmp_path / "gt.json"))
    evaluation = COCOeval(gt, gt.loadRes(str(tmp_path / "dt.json")), "keypoints", sigmas=WHOLEBODY_SIGMAS, use_area=True)
    evaluation.evaluate(), evaluation.accumulate(), evaluation.summarize()
    assert ours == pytest.approx(evaluation.stats[0]) and 0 < ours < 1
