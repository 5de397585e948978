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
    return [
        person_keypoints(256 + rng.uniform(-40, 40), 30, 440, {"left": True, "right": False}, {"left": "palm", "right": "fist"}, rng)
        for _ in range(n)
    ]


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


def test_the_oks_scale_is_the_persons_area_for_every_part_as_coco_wholebody_evaluates(tmp_path):
    """COCO-WholeBody's myeval_*.py divide every part's squared distances by gt['area'], the
    person's segment area: a hand error is judged against the person's size, not the hand's."""
    import json

    targets = people(4)
    person_areas = [150_000.0, None, 120_000.0, 90_000.0]  # one image without a mask: the visible-keypoint box instead
    shifted = [t.copy() for t in targets]
    for s in shifted:
        s[kp.HANDS, :2] += (2.0, 3.0)
    for part in ("wholebody", "hands"):
        keypoint_ap(targets, shifted, part, tmp_path / part, person_areas)
        gt = json.loads((tmp_path / part / "gt.json").read_text())
        areas = [a["area"] for a in gt["annotations"]]
        body = targets[1][targets[1][:, 2] > 0, :2]
        assert areas == pytest.approx([150_000.0, np.ptp(body[:, 0]) * np.ptp(body[:, 1]), 120_000.0, 90_000.0]), part
    by_person = keypoint_ap(targets, shifted, "hands", tmp_path / "p", person_areas)
    by_hand_box = keypoint_ap(targets, shifted, "hands", tmp_path / "h", person_areas, oks_area="part_box")
    assert by_hand_box < by_person  # the same 3.6 px weighs more against a hand's box than against a person
    gt = json.loads((tmp_path / "h" / "gt.json").read_text())
    hands = targets[0][kp.HANDS][targets[0][kp.HANDS, 2] > 0, :2]
    assert gt["annotations"][0]["area"] == pytest.approx(np.ptp(hands[:, 0]) * np.ptp(hands[:, 1]))


def test_a_point_the_detection_does_not_hold_is_a_miss_even_where_its_coordinates_are_right(tmp_path):
    targets = people(4)
    detections = [t.copy() for t in targets]
    for d in detections:
        d[kp.LEFT_HAND.start + 10 :, 2] = 0  # half the hand not detected, the positions left as they are
    assert keypoint_ap(targets, detections, "hands", tmp_path / "h") < 0.5
    assert keypoint_ap(targets, [t.copy() for t in targets], "hands", tmp_path / "all") == pytest.approx(1.0)


@pytest.mark.parametrize("part", ["wholebody", "hands"])
def test_a_resample_reaccumulated_from_one_evaluation_equals_a_fresh_evaluation(tmp_path, part):
    """Each image's OKS match is evaluated once; a resample (repeats included) re-accumulates
    those per-image results, packed 20 images to an entry (45 images: three packs, the last
    short), and must give exactly what xtcocotools gives on the resampled set."""
    from handdiff.metrics.keypoints import coco_files, coco_keypoint_ap, keypoint_evaluation, oks_areas

    def fresh(rows: list[int], directory):  # a COCOeval of its own, default parameters, on the chosen rows
        chosen_targets, chosen_detections = [targets[i] for i in rows], [detections[i] for i in rows]
        gt, dt, _ = coco_files(chosen_targets, chosen_detections, part, directory, oks_areas(chosen_targets, None, part))
        return coco_keypoint_ap(gt, dt, sigmas(part))

    rng = np.random.default_rng(3)
    targets = people(45)
    # errors and confidences in no particular order, so the sort by score interleaves hits and misses
    detections = [
        np.column_stack([t[:, :2] + rng.normal(0, rng.uniform(2, 40), (133, 2)), t[:, 2] * rng.uniform(0.2, 1.0)]).astype(np.float32)
        for t in targets
    ]
    detections[2] = None  # nobody found
    detections[5][kp.HANDS, 2] = 0  # no hands found
    detections[7][kp.LEFT_HAND.start + 5 :, 2] = 0  # part of a hand
    once = keypoint_evaluation(targets, detections, part, tmp_path / "once")
    assert once.ap() == fresh(range(45), tmp_path / "all")
    for b in range(5):
        draw = rng.integers(0, 45, 45)
        assert len(set(draw.tolist())) < 45  # repeats
        assert once.ap(draw) == fresh(draw, tmp_path / f"fresh{b}"), (b, draw)
    assert once.ap(np.array([2])) == 0.0 and np.isnan(once.ap(np.array([], np.int64)))
