"""LAION-Human reader (the HumanSD release of LAION images of people).

``<root>/mapping_file_training.json`` maps each example key to ``img_path``,
``pose_path`` (relative to the root) and ``prompt``. Images are img2dataset shards
``images/<shard>/<key>.jpg`` beside ``images/<shard>.parquet`` (``url``, ``key``,
``width``, ``height``, ...); poses are ``pose/<shard>/<key>.npz`` whose ``arr_0`` is a
list of per-person dicts with 17 x 3 COCO body ``keypoints``.

The npz files hold pickled Python objects (that is how HumanSD wrote them): they are
read by ``handdiff.data.safe_npz``, whose unpickler rebuilds only numpy arrays and plain
values, so a pose file that tries to run code is an error row, never run. The prompts
and poses are provenance only: the annotation job replaces them (LLaVA captions,
Mediapipe keypoints).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from handdiff import storage
from handdiff.data import keypoints as kp
from handdiff.data.reading import DatasetNotFound, EntryError, Reader, file_error, finite_array, load_json
from handdiff.data.records import error_row, source_row
from handdiff.data.safe_npz import load_npz


class LaionHumanReader(Reader):
    dataset = "laion_human"

    def __init__(self, root: str, mapping: str = "mapping_file_training.json", split: str = "train", min_person_score: float = 0.3):
        self.root, self.mapping, self.split, self.min_person_score = root, mapping, split, min_person_score

    def _shard_rows(self) -> dict[str, dict[str, Any]]:
        """key -> img2dataset row (url, width, height, ...) from every ``images/*.parquet``."""
        rows = {}
        for name, is_dir in storage.listdir(storage.join(self.root, "images")):
            if is_dir or not name.endswith(".parquet"):
                continue
            table = pq.read_table(io.BytesIO(storage.read_bytes(storage.join(self.root, "images", name))))
            for row in table.to_pylist():
                rows[str(row.get("key"))] = row
        return rows

    def entries(self) -> Iterator[dict[str, Any]]:
        mapping_uri = storage.join(self.root, self.mapping)
        if not storage.exists(mapping_uri):
            raise DatasetNotFound(f"no LAION-Human mapping file at {mapping_uri}")
        try:
            mapping = load_json(mapping_uri)
        except EntryError as err:
            yield file_error(self.dataset, f"{self.dataset}/{self.mapping}", err)
            return
        shards = self._shard_rows()
        for key, example in mapping.items():
            if not isinstance(example, dict) or "img_path" not in example:
                yield error_row(f"{self.dataset}/{self.mapping}#{key}", self.dataset, "read", "missing field 'img_path'")
                continue
            shard = shards.get(str(key), {})
            yield {
                "image_id": f"{self.dataset}/{example['img_path']}",
                "image_uri": storage.join(self.root, example["img_path"]),
                "pose_uri": storage.join(self.root, example["pose_path"]) if example.get("pose_path") else None,
                "prompt": example.get("prompt"),
                "key": str(key),
                "url": shard.get("url"),
                "width": shard.get("width") or None,
                "height": shard.get("height") or None,
            }

    def _record(self, entry: dict[str, Any]) -> dict[str, Any]:
        detections = _load_people(entry["pose_uri"])
        # HumanSD's files keep every detection, however weak (a release file holds 9, one at
        # score 0.05): only confident ones are people, and "the" person is the most confident
        people = [(score, points) for score, points in detections if score >= self.min_person_score]
        keypoints = None
        if people:
            keypoints = kp.empty_keypoints()
            keypoints[kp.BODY] = max(people, key=lambda p: p[0])[1]
        return source_row(
            entry["image_id"],
            self.dataset,
            self.split,
            entry["image_uri"],
            width=entry["width"],
            height=entry["height"],
            keypoints=keypoints,
            person_count=len(people),
            caption=entry["prompt"],
            source={"key": entry["key"], "url": entry["url"]},
        )


def person_score(person: dict) -> float:
    """A detection's confidence: its own ``score`` (or a 5-element ``bbox``'s last value, as
    top-down pose estimators write it) where the file has one, else its keypoints' mean score
    (every detection has 17 non-zero keypoint scores, so their count says nothing)."""
    if "score" in person:
        return float(person["score"])
    box = person.get("bbox")
    if box is not None and len(box) == 5:
        return float(box[4])
    return float(np.mean(np.asarray(person["keypoints"], np.float32).reshape(17, 3)[:, 2]))


def _load_people(pose_uri: str | None) -> list[tuple[float, np.ndarray]]:
    """Each detection's ``(score, (17, 3) COCO keypoints)`` from a HumanSD pose file."""
    if pose_uri is None:
        raise EntryError("missing field 'pose_path'")
    try:
        data = storage.read_bytes(pose_uri)
    except FileNotFoundError:
        raise EntryError(f"pose file not found: {pose_uri}") from None
    try:
        people = load_npz(data)["arr_0"]
    except (pickle.UnpicklingError, ValueError, KeyError, EOFError) as err:
        raise EntryError(f"cannot read pose file {pose_uri}: {err}") from None
    return [(person_score(person), finite_array(person["keypoints"], (17, 3), "keypoints").astype(np.float32)) for person in people]
