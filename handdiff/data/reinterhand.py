"""Re:InterHand reader.

Per capture ``<root>/<capture_id>/``: ``Mugsy_cameras/cam_params.json`` ({camera:
``R``, ``t`` in mm, ``focal``, ``princpt``}), rendered images
``Mugsy_cameras/<envmap>/images/<camera>/%06d.png``, the release's hand masks
``Mugsy_cameras/<envmap>/masks/<camera>/%06d.png`` where present, and keypoints
``orig_fits/{right,left}/Keypoints/keypoint-%06d.json``: 24 world joints in mm
(wrist, Thumb_0..4, Index/Middle/Ring_1..4, Pinky_0..4, forearm stub), projected
with ``cam = R @ X + t``. Frames are found by listing the image folders, as the
release's own loader does. The split of a capture is ``test`` when it is one of
``test_captures`` (default: the release's three test captures), else ``train``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from handdiff import storage
from handdiff.data import keypoints as kp
from handdiff.data.camera import project, world_to_camera
from handdiff.data.images import ImageError, image_size
from handdiff.data.reading import DatasetNotFound, EntryError, Reader, file_error, finite_array, load_json, visible_in_image
from handdiff.data.records import source_row

RELEASE_TEST_CAPTURES = (
    "m--20221215--0949--RNS217--pilot--ProjectGoliathScript--Hands--two-hands",
    "m--20221216--0953--NKC880--pilot--ProjectGoliathScript--Hands--two-hands",
    "m--20230317--1130--QZX685--pilot--ProjectGoliath--Hands--two-hands",
)


class ReInterHandReader(Reader):
    dataset = "reinterhand"

    def __init__(
        self,
        root: str,
        splits: Sequence[str] | None = None,
        test_captures: Sequence[str] = RELEASE_TEST_CAPTURES,
        envmap: str = "envmap_per_frame",
    ):
        self.root, self.envmap = root, envmap
        self.splits = set(splits) if splits else None
        self.test_captures = set(test_captures)

    def entries(self) -> Iterator[dict[str, Any]]:
        captures = [name for name, is_dir in storage.listdir(self.root) if is_dir and storage.exists(self._cam_params(name))]
        if not captures:
            raise DatasetNotFound(f"no Re:InterHand captures (*/Mugsy_cameras/cam_params.json) under {self.root}")
        for capture in captures:
            split = "test" if capture in self.test_captures else "train"
            if self.splits and split not in self.splits:
                continue
            try:
                params = load_json(self._cam_params(capture))
            except EntryError as err:
                yield file_error(self.dataset, f"{self.dataset}/{capture}/Mugsy_cameras/cam_params.json", err)
                continue
            base = f"{capture}/Mugsy_cameras/{self.envmap}"
            for camera, is_dir in storage.listdir(storage.join(self.root, base, "images")):
                if not is_dir:
                    continue
                masks = {name for name, _ in storage.listdir(storage.join(self.root, base, "masks", camera))}
                for name, _ in storage.listdir(storage.join(self.root, base, "images", camera)):
                    if not name.endswith(".png"):
                        continue
                    rel = f"{base}/images/{camera}/{name}"
                    yield {
                        "image_id": f"{self.dataset}/{rel}",
                        "split": split,
                        "image_uri": storage.join(self.root, rel),
                        "mask_uri": storage.join(self.root, base, "masks", camera, name) if name in masks else None,
                        "capture": capture,
                        "camera": camera,
                        "frame": int(name.removesuffix(".png")),
                        "params": params.get(camera) if isinstance(params, dict) else None,
                    }

    def _cam_params(self, capture: str) -> str:
        return storage.join(self.root, capture, "Mugsy_cameras", "cam_params.json")

    def _record(self, entry: dict[str, Any]) -> dict[str, Any]:
        params = entry["params"]
        if params is None:
            raise EntryError(f"no camera parameters for camera {entry['camera']}")
        rotation = finite_array(params["R"], (3, 3), "R")
        translation = finite_array(params["t"], (3,), "t")
        try:
            width, height = image_size(entry["image_uri"])
        except ImageError as err:
            raise EntryError(str(err)) from None
        keypoints = kp.empty_keypoints()
        boxes, sides = [], []
        for side in kp.SIDES:
            world = _hand_joints(self.root, entry["capture"], side, entry["frame"])
            uv, in_front = project(world_to_camera(world, rotation, translation), params["focal"], params["princpt"])
            score = (in_front & visible_in_image(uv, width, height)).astype(np.float32)
            keypoints[kp.hand_slice(side)] = np.column_stack([uv, score])
            box = kp.hand_box(uv, score)
            if box is not None and box[2] > 0 and box[3] > 0:
                boxes.append(list(box))
                sides.append(side)
        return source_row(
            entry["image_id"],
            self.dataset,
            entry["split"],
            entry["image_uri"],
            width=width,
            height=height,
            keypoints=keypoints,
            hand_boxes=boxes,
            hand_sides=sides,
            labels=list(sides),
            sequence=entry["capture"],
            camera=entry["camera"],
            frame=entry["frame"],
            mask_uri=entry["mask_uri"],
            source={"capture": entry["capture"], "envmap": self.envmap},
        )


@functools.lru_cache(maxsize=256)
def _hand_joints(root: str, capture: str, side: str, frame: int) -> np.ndarray:
    """(21, 3) world joints (mm) of one hand in canonical order; shared by a frame's cameras."""
    rel = f"orig_fits/{side}/Keypoints/keypoint-{frame:06d}.json"
    uri = storage.join(root, capture, rel)
    if not storage.exists(uri):
        raise EntryError(f"keypoint file not found: {rel}")
    joints = load_json(uri)
    if not isinstance(joints, list) or len(joints) != len(kp.REINTERHAND_JOINTS):
        raise EntryError(
            f"{rel}: expected {len(kp.REINTERHAND_JOINTS)} joints, got {len(joints) if isinstance(joints, list) else type(joints).__name__}"
        )
    return finite_array(joints, (len(kp.REINTERHAND_JOINTS), 3), f"keypoints in {rel}")[kp.REINTERHAND_TO_HAND]
