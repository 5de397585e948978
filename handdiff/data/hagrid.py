"""HaGRID reader (v1, v2 and v2-1M annotation layouts).

Images: ``<images>/<gesture>/<id>.jpg``. Annotations: one JSON per gesture keyed by
image id, at ``<annotations>/<split>/<gesture>.json`` (v2) or
``<annotations>/<gesture>.json`` (v1, one split per annotation root). Boxes are
normalised ``[x, y, w, h]`` (top-left origin); each box has a label and, where
annotated, 21 normalised hand landmarks (``landmarks`` in v1, ``hand_landmarks``
in v2-1M) in the canonical hand order.

Handedness: v1's ``leading_hand`` names the side of the gesturing hand (the
other box is the other hand). Without it (v2), the person faces the camera by
HaGRID's capture protocol, so the hand further left in the image is the
person's right; ``source.handedness`` records which rule was used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from handdiff import storage
from handdiff.data import keypoints as kp
from handdiff.data.images import ImageError, image_size
from handdiff.data.reading import DatasetNotFound, EntryError, Reader, check_box, file_error, finite_array, load_json, require
from handdiff.data.records import source_row

NO_GESTURE = "no_gesture"


class HagridReader(Reader):
    dataset = "hagrid"

    def __init__(
        self,
        images: str,
        annotations: str,
        layout: Literal["v1", "v2"] = "v2",
        splits: Sequence[str] | None = None,
        gestures: Sequence[str] | None = None,
    ):
        """
        Args:
            images: URI of the folder holding one subfolder per gesture.
            annotations: URI of the annotation root (v2: split subfolders; v1: gesture files).
            layout: "v2" (also v2-1M) or "v1".
            splits: v2: the splits to read (default: every subfolder); v1: one name for this root
                (default "train").
            gestures: gesture files to read (default: all found).
        """
        self.images, self.annotations, self.layout = images, annotations, layout
        self.splits, self.gestures = splits, gestures

    def _annotation_files(self) -> Iterator[tuple[str, str, str]]:
        """(split, gesture, uri) of every annotation file to read."""
        if self.layout == "v1":
            split = (self.splits or ["train"])[0]
            roots = [(split, self.annotations)]
        else:
            found = [name for name, is_dir in storage.listdir(self.annotations) if is_dir]
            roots = [(s, storage.join(self.annotations, s)) for s in (self.splits or found)]
        any_found = False
        for split, root in roots:
            for name, is_dir in storage.listdir(root):
                gesture = name.removesuffix(".json")
                if is_dir or not name.endswith(".json") or (self.gestures and gesture not in self.gestures):
                    continue
                any_found = True
                yield split, gesture, storage.join(root, name)
        if not any_found:
            raise DatasetNotFound(f"no HaGRID {self.layout} annotation files under {self.annotations}")

    def entries(self) -> Iterator[dict[str, Any]]:
        for split, gesture, uri in self._annotation_files():
            rel = uri[len(self.annotations) :].lstrip("/")
            try:
                annotations = load_json(uri)
                if not isinstance(annotations, dict):
                    raise EntryError(f"{uri}: expected an object keyed by image id")
            except EntryError as err:
                yield file_error(self.dataset, f"{self.dataset}/annotations/{rel}", err)
                continue
            for image_key, annotation in annotations.items():
                yield {
                    "image_id": f"{self.dataset}/{gesture}/{image_key}.jpg",
                    "split": split,
                    "gesture": gesture,
                    "image_uri": storage.join(self.images, gesture, f"{image_key}.jpg"),
                    "annotation": annotation,
                }

    def _record(self, entry: dict[str, Any]) -> dict[str, Any]:
        ann = entry["annotation"]
        if not isinstance(ann, dict):
            raise EntryError("annotation is not an object")
        bboxes, labels = require(ann, "bboxes", "labels")
        if not isinstance(bboxes, list) or not isinstance(labels, list) or len(bboxes) != len(labels):
            raise EntryError(f"bboxes ({_len(bboxes)}) and labels ({_len(labels)}) must be lists of the same length")
        boxes = [check_box(b, f"bbox {i}") for i, b in enumerate(bboxes)]
        landmarks = ann.get("hand_landmarks", ann.get("landmarks")) or []
        if landmarks and len(landmarks) != len(boxes):
            raise EntryError(f"{len(landmarks)} landmark lists for {len(boxes)} boxes")
        try:
            width, height = image_size(entry["image_uri"])
        except ImageError as err:
            raise EntryError(str(err)) from None

        sides, rule = _hand_sides(boxes, labels, ann.get("leading_hand"))
        keypoints = kp.empty_keypoints()
        has_landmarks = False
        for i, points in enumerate(landmarks):
            if not points or sides[i] not in kp.SIDES:
                continue  # HaGRID leaves some hands without landmarks; crowds have no known sides
            xy = finite_array(points, (kp.NUM_HAND_KEYPOINTS, 2), f"keypoints of hand {i}") * [width, height]
            keypoints[kp.hand_slice(sides[i])] = np.column_stack([xy, np.ones(kp.NUM_HAND_KEYPOINTS)])
            has_landmarks = True
        united = [u if u is not None else boxes[i] for i, u in enumerate(ann.get("united_bbox") or [])] if "united_bbox" in ann else None
        return source_row(
            entry["image_id"],
            self.dataset,
            entry["split"],
            entry["image_uri"],
            width=width,
            height=height,
            keypoints=keypoints if has_landmarks else None,
            hand_boxes=[[x * width, y * height, w * width, h * height] for x, y, w, h in boxes],
            hand_sides=sides,
            labels=[str(label) for label in labels],
            gesture=entry["gesture"],
            source={
                "user_id": ann.get("user_id"),
                "meta": ann.get("meta"),
                "united_bbox": united,
                "united_label": ann.get("united_label"),
                "leading_conf": ann.get("leading_conf"),
                "handedness": rule,
            },
        )


def _len(value: Any) -> str:
    return str(len(value)) if isinstance(value, list) else type(value).__name__


def _hand_sides(boxes: list[list[float]], labels: list[str], leading_hand: str | None) -> tuple[list[str], str]:
    """The person's side of each box, and the rule used (see the module docstring)."""
    if leading_hand in kp.SIDES and len(boxes) <= 2:
        other = "left" if leading_hand == "right" else "right"
        gesturing = [label != NO_GESTURE for label in labels]
        if sum(gesturing) == 1 or len(boxes) == 1:
            return [leading_hand if g or len(boxes) == 1 else other for g in gesturing], "leading_hand"
    if len(boxes) > 2:
        return ["unknown"] * len(boxes), "unknown"
    centres = [x + w / 2 for x, _, w, _ in boxes]
    if len(boxes) == 2:
        left_most = int(np.argmin(centres))
        return ["right" if i == left_most else "left" for i in range(2)], "image_position"
    return ["right" if c < 0.5 else "left" for c in centres], "image_position"
