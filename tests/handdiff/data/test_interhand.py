"""InterHand2.6M's reader (handdiff.data.interhand): projection checked with OpenCV, validity, hand types."""

from __future__ import annotations

import json

import cv2
import numpy as np

from handdiff import storage
from handdiff.assets.sample_data import read_manifest
from handdiff.data import keypoints as kp
from handdiff.data.images import load_image
from handdiff.data.records import keypoints_from_column
from tests.handdiff.data.sample import read


def _interhand_raw(sample_data: str, split: str):
    base = f"{sample_data}/interhand26m/annotations/{split}/InterHand2.6M_{split}"
    return (json.loads(storage.read_text(f"{base}_{part}.json")) for part in ("data", "camera", "joint_3d"))


def test_interhand_projection_matches_opencv(sample_data):
    records, _ = read(sample_data, "interhand26m")
    checked = 0
    for split in ("train", "test"):
        data, cameras, joints = _interhand_raw(sample_data, split)
        by_file = {f"interhand26m/images/{split}/{im['file_name']}": im for im in data["images"]}
        for r in records:
            if r["split"] != split or r["image_id"] not in by_file:
                continue
            im = by_file[r["image_id"]]
            cam = {k: np.array(v[im["camera"]], np.float64) for k, v in cameras[str(im["capture"])].items()}
            world = np.array(joints[str(im["capture"])][str(im["frame_idx"])]["world_coord"], np.float64)
            rvec, _ = cv2.Rodrigues(cam["camrot"])
            tvec = -cam["camrot"] @ cam["campos"]
            K = np.array([[cam["focal"][0], 0, cam["princpt"][0]], [0, cam["focal"][1], cam["princpt"][1]], [0, 0, 1]])
            uv, _ = cv2.projectPoints(world, rvec, tvec, K, None)
            uv = uv.reshape(42, 2)
            keypoints = keypoints_from_column(r["keypoints"])
            # InterHand order per hand: thumb tip .. thumb base, index tip .., pinky, wrist last
            for side, offset in (("right", 0), ("left", 21)):
                hand = keypoints[kp.hand_slice(side)]
                valid = hand[:, 2] > 0
                if valid[0]:
                    np.testing.assert_allclose(hand[0, :2], uv[offset + 20], atol=1e-3)
                for finger in range(5):
                    for j in range(4):  # canonical base -> tip
                        if valid[1 + 4 * finger + j]:
                            np.testing.assert_allclose(hand[1 + 4 * finger + j, :2], uv[offset + 4 * finger + 3 - j], atol=1e-3)
            checked += 1
    assert checked >= 20


def test_interhand_validity_hand_types_and_pixels(sample_data):
    records, _ = read(sample_data, "interhand26m")
    bad = {e["image_id"] for e in read_manifest(sample_data)["bad_entries"]}
    for r in records:
        if r["image_id"] in bad:
            continue
        keypoints = keypoints_from_column(r["keypoints"])
        right, left = keypoints[kp.RIGHT_HAND], keypoints[kp.LEFT_HAND]
        if r["labels"] == ["right"]:
            assert right[:, 2].all() and not left[:, 2].any()
            assert r["hand_sides"] == ["right"]
        else:
            assert r["labels"] == ["interacting"] and r["hand_sides"] == ["both"]
            assert right[:, 2].any() and left[:, 2].any()
        assert (r["width"], r["height"]) == (334, 512)
        assert r["sequence"] in ("0000_neutral_relaxed", "0051_fist_interaction")
        # the hands are drawn in skin tones on a grey studio background
        image = load_image(r["image_uri"]).astype(int)
        x, y = np.round(right[[0, 5, 9, 13, 17], :2].mean(0)).astype(int)
        assert image[y, x, 0] - image[y, x, 2] > 15, r["image_id"]
        assert abs(image[2, 2, 0] - image[2, 2, 2]) < 8
