"""Re:InterHand's reader (handdiff.data.reinterhand): projection, joint mapping, release masks."""

from __future__ import annotations

import json

import cv2
import numpy as np

from handdiff import storage
from handdiff.data import keypoints as kp
from handdiff.data.images import load_image
from handdiff.data.records import keypoints_from_column
from tests.handdiff.data.sample import read


def test_reinterhand_projection_mapping_and_release_masks(sample_data):
    records, _ = read(sample_data, "reinterhand")
    root = f"{sample_data}/reinterhand"
    checked = masks = 0
    for r in records:
        if r["frame"] >= 200:
            continue  # the bad-entry frames
        capture = r["sequence"]
        params = json.loads(storage.read_text(f"{root}/{capture}/Mugsy_cameras/cam_params.json"))[r["camera"]]
        keypoints = keypoints_from_column(r["keypoints"])
        for side in kp.SIDES:
            joints = np.array(json.loads(storage.read_text(f"{root}/{capture}/orig_fits/{side}/Keypoints/keypoint-{r['frame']:06d}.json")))
            names = kp.REINTERHAND_JOINTS
            wanted = ["Wrist"] + [f"{f}_{j}" for f in ("Thumb", "Index", "Middle", "Ring", "Pinky") for j in range(1, 5)]
            world = joints[[names.index(n) for n in wanted]]
            K = np.array([[params["focal"][0], 0, params["princpt"][0]], [0, params["focal"][1], params["princpt"][1]], [0, 0, 1]])
            uv, _ = cv2.projectPoints(world, cv2.Rodrigues(np.array(params["R"]))[0], np.array(params["t"], np.float64), K, None)
            np.testing.assert_allclose(keypoints[kp.hand_slice(side)][:, :2], uv.reshape(21, 2), atol=1e-3)
        assert r["split"] == ("test" if capture.startswith("m--20221215") else "train")
        if r["mask_uri"] is not None:
            mask = load_image(r["mask_uri"])[..., 0]
            for side in kp.SIDES:
                x, y = np.round(keypoints[kp.hand_slice(side)][[0, 5, 9, 13, 17], :2].mean(0)).astype(int)
                assert mask[y, x] > 127
            assert mask.mean() < 0.5 * 255  # the hands, not the whole frame
            masks += 1
        checked += 1
    assert checked == 18 and 0 < masks < checked  # one camera ships no masks
