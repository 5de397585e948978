"""InterHand2.6M reader.

``annotations/<split>/InterHand2.6M_<split>_data.json`` is COCO-like (images with
``capture, seq_name, camera, frame_idx``; one annotation per image with ``bbox``
xywh, 42 ``joint_valid`` flags and ``hand_type``). ``..._camera.json`` holds
``[capture]['campos'|'camrot'|'focal'|'princpt'][camera]`` and ``..._joint_3d.json``
``[capture][frame_idx]['world_coord']`` (42 x 3, mm). 2D keypoints are the world
joints projected with ``cam = R @ (X - campos)``, ``u = x / z * fx + cx``; each hand's
tip-first order becomes the canonical one. A joint scores 1 when the dataset marks it
valid and it projects inside the image, else 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from handdiff import storage
from handdiff.data import keypoints as kp
from handdiff.data.camera import project, world_to_camera
from handdiff.data.reading import DatasetNotFound, EntryError, Reader, check_box, file_error, finite_array, load_json, visible_in_image
from handdiff.data.records import source_row

# right hand 0-20, left hand 21-41 in InterHand2.6M's 42 joints
HAND_JOINTS = {"right": slice(0, 21), "left": slice(21, 42)}


class InterHandReader(Reader):
    dataset = "interhand26m"

    def __init__(self, root: str, splits: Sequence[str] | None = None):
        """
        Args:
            root: URI holding ``annotations/`` and ``images/``.
            splits: splits to read (default: every split with annotation files).
        """
        self.root = root
        self.splits = splits

    def _split_files(self, split: str) -> dict[str, str]:
        base = storage.join(self.root, "annotations", split, f"InterHand2.6M_{split}")
        return {part: f"{base}_{part}.json" for part in ("data", "camera", "joint_3d")}

    def entries(self) -> Iterator[dict[str, Any]]:
        splits = self.splits or [name for name, is_dir in storage.listdir(storage.join(self.root, "annotations")) if is_dir]
        if not splits:
            raise DatasetNotFound(f"no InterHand2.6M annotation splits under {self.root}/annotations")
        for split in splits:
            files = self._split_files(split)
            try:
                data, cameras, joints = (load_json(files[p]) for p in ("data", "camera", "joint_3d"))
                images, annotations = data["images"], data["annotations"]
            except EntryError as err:
                yield file_error(self.dataset, f"{self.dataset}/annotations/{split}", err)
                continue
            except (KeyError, TypeError) as err:
                yield file_error(self.dataset, f"{self.dataset}/annotations/{split}", EntryError(f"{files['data']}: missing {err}"))
                continue
            by_image = {}
            for ann in annotations:
                by_image.setdefault(ann.get("image_id"), ann)
            for image in images:
                rel = f"images/{split}/{image.get('file_name')}"
                capture, camera, frame = str(image.get("capture")), str(image.get("camera")), str(image.get("frame_idx"))
                cam = cameras.get(capture, {})
                yield {
                    "image_id": f"{self.dataset}/{rel}",
                    "split": split,
                    "image_uri": storage.join(self.root, rel),
                    "image": image,
                    "annotation": by_image.get(image.get("id")),
                    "camera": {k: cam.get(k, {}).get(camera) for k in ("campos", "camrot", "focal", "princpt")},
                    "joints": joints.get(capture, {}).get(frame),
                }

    def _record(self, entry: dict[str, Any]) -> dict[str, Any]:
        image, ann = entry["image"], entry["annotation"]
        if ann is None:
            raise EntryError("no annotation for this image")
        if entry["joints"] is None:
            raise EntryError(f"no 3D joints for capture {image['capture']} frame {image['frame_idx']}")
        if any(v is None for v in entry["camera"].values()):
            raise EntryError(f"no camera parameters for capture {image['capture']} camera {image['camera']}")
        world = finite_array(entry["joints"]["world_coord"], (42, 3), "3D joints")
        valid = np.asarray(ann["joint_valid"], np.float64).reshape(-1)
        if len(valid) != 42:
            raise EntryError(f"joint_valid has {len(valid)} entries, expected 42")
        box = check_box(ann["bbox"], "bbox")
        cam = entry["camera"]
        rotation = finite_array(cam["camrot"], (3, 3), "camrot")
        position = finite_array(cam["campos"], (3,), "campos")
        uv, in_front = project(world_to_camera(world, rotation, -rotation @ position), cam["focal"], cam["princpt"])
        width, height = int(image["width"]), int(image["height"])
        score = ((valid > 0) & in_front & visible_in_image(uv, width, height)).astype(np.float32)
        keypoints = kp.empty_keypoints()
        for side, joints in HAND_JOINTS.items():
            order = np.arange(joints.start, joints.stop)[kp.INTERHAND_TO_HAND]
            keypoints[kp.hand_slice(side)] = np.column_stack([uv[order], score[order]])
        hand_type = ann.get("hand_type")
        return source_row(
            entry["image_id"],
            self.dataset,
            entry["split"],
            entry["image_uri"],
            width=width,
            height=height,
            keypoints=keypoints,
            hand_boxes=[box],
            hand_sides=["both" if hand_type == "interacting" else str(hand_type)],
            labels=[str(hand_type)],
            sequence=image["seq_name"],
            camera=str(image["camera"]),
            frame=int(image["frame_idx"]),
            source={"capture": image["capture"], "subject": image.get("subject"), "hand_type_valid": ann.get("hand_type_valid")},
        )
