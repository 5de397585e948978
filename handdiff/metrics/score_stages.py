"""The stages of the ``score`` job, Ray-free, in two passes.

The **real side** depends on the condition set alone, so it is computed once per condition (and
Inception model) and reused by every method and every rerun (``REAL_SCHEMA``): the conditioning
keypoints, the real person's mask area (the OKS scale) and the 192-d Inception features of the
real foreground (the annotated person mask) and whole image (``real_inputs``, ``RealFeatures``).

The **generated side**, for any number of methods' outputs in one pass: generated images joined
with their condition's real side (tasks, ``score_inputs``), then per image the detected
whole-body keypoints (Mediapipe Holistic, as in annotation; CPU actors, ``DetectPeople``), the
CLIP score against the caption and the Inception features of the generated foreground (the person
masked by SAM prompted with the conditioning body box) and whole image (GPU actors,
``ImageScores``), each row written under its own method's output (``write_scores``). The figures
are computed from these rows afterwards (``handdiff.metrics.summary``).
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from handdiff import storage
from handdiff.data import keypoints as kp
from handdiff.data.images import ImageError, decode_image
from handdiff.data.parts import read_part
from handdiff.data.records import KEYPOINTS_TYPE, RLE_TYPE
from handdiff.data.rle import decode_rle, encode_rle, rle_area
from handdiff.data.work_rows import COUNTS_SCHEMA, fail, for_ok_rows, new_row, work_schema, write_outputs

FEATURES_TYPE = pa.list_(pa.float32())
REAL_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string()),
        pa.field("target", KEYPOINTS_TYPE, nullable=False),  # 399: the conditioning keypoints, output pixels
        pa.field("person_area", pa.float32()),  # px^2: the real person's mask (the OKS scale); null without one
        pa.field("real_features", FEATURES_TYPE, nullable=False),  # 192: Inception, real foreground
        pa.field("real_image_features", FEATURES_TYPE, nullable=False),  # 192: Inception, real whole image
        pa.field("code_version", pa.string(), nullable=False),
    ]
)
REAL_WORK_SCHEMA = work_schema(REAL_SCHEMA, [pa.field("real_bytes", pa.binary()), pa.field("real_mask", RLE_TYPE)])
SCORE_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string()),
        pa.field("gesture", pa.string()),
        pa.field("method", pa.string(), nullable=False),
        pa.field("size", pa.int32(), nullable=False),
        pa.field("target", KEYPOINTS_TYPE, nullable=False),  # 399: the conditioning keypoints, output pixels
        pa.field("detected", KEYPOINTS_TYPE),  # 399: Holistic on the generated image; null when no person was found
        pa.field("person_area", pa.float32()),  # px^2: the real person's mask (the OKS scale); null without one
        pa.field("clip_score", pa.float32(), nullable=False),
        pa.field("real_features", FEATURES_TYPE, nullable=False),  # 192: Inception, real foreground (the real side's)
        pa.field("fake_features", FEATURES_TYPE, nullable=False),  # 192: Inception, generated foreground
        pa.field("real_image_features", FEATURES_TYPE),  # 192: Inception, real whole image (Table II's FID)
        pa.field("fake_image_features", FEATURES_TYPE),  # 192: Inception, generated whole image
        pa.field("person_mask", RLE_TYPE),  # SAM's mask of the generated person
        pa.field("code_version", pa.string(), nullable=False),
    ]
)
_INPUTS = [pa.field("caption", pa.string()), pa.field("image_bytes", pa.binary()), pa.field("output", pa.string())]
SCORE_WORK_SCHEMA = work_schema(SCORE_SCHEMA, _INPUTS)


def _rows_of(entries: list[dict], columns: list[str]) -> dict[str, dict]:
    """image id -> its row, read from the part each entry names (``part``), each part once."""
    by_part: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        by_part[entry["part"]].append(entry["image_id"])
    rows = {}
    for part, ids in by_part.items():
        if not part.startswith("("):  # "(no condition)"
            table = read_part(part, columns)
            rows.update({r["image_id"]: r for r in table.filter(pc.is_in(table.column("image_id"), pa.array(ids))).to_pylist()})
    return rows


def _decode(rows: list[dict], column: str, what: str = "") -> tuple[list[np.ndarray], list[dict]]:
    """The images in ``column`` of ``rows`` and the rows they came from; a row whose image does
    not decode becomes a ``decode`` error (``what`` + the reason)."""
    images, ok = [], []
    for row in rows:
        try:
            images.append(decode_image(row[column]))
            ok.append(row)
        except ImageError as err:
            fail(row, "decode", f"{what}{err}")
    return images, ok


def real_inputs(batch: pa.Table, code_version: str) -> pa.Table:
    """Index entries (a condition id and the condition part holding it) -> work rows with the real
    image and person mask, the target keypoints and the person's area."""
    entries = [json.loads(entry) for entry in batch.column("entry").to_pylist()]
    conditions = _rows_of(entries, ["image_id", "dataset", "keypoints", "real_image", "person_mask"])
    rows = []
    for entry in entries:
        condition = conditions.get(entry["image_id"])
        row = new_row(REAL_WORK_SCHEMA, image_id=entry["image_id"], dataset=condition and condition["dataset"], code_version=code_version)
        if condition is None:
            fail(row, "read", f"not in its condition part {entry['part']}")
        else:
            mask = condition["person_mask"]
            row.update(
                target=condition["keypoints"],
                real_bytes=condition["real_image"],
                real_mask=mask,
                person_area=float(rle_area([mask])) if mask else None,
            )
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=REAL_WORK_SCHEMA)


class RealFeatures:
    """Ray Data actor stage (GPU): the Inception features of each condition's real foreground
    (everything outside its annotated person mask black) and whole image."""

    def __init__(self, inception: str, device: str = "cpu"):
        from handdiff.metrics.images import InceptionFeatures
        from handdiff.models.loading import inception_weights

        self.features = InceptionFeatures(inception_weights(inception), device)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return for_ok_rows(batch, self._features, REAL_WORK_SCHEMA)

    def _features(self, rows: list[dict]) -> None:
        from handdiff.metrics.images import foreground

        reals, ok = _decode(rows, "real_bytes", "real image: ")
        if not ok:
            return
        fg = [
            foreground(real, decode_rle(r["real_mask"]) if r["real_mask"] else np.zeros(real.shape[:2], bool))
            for real, r in zip(reals, ok, strict=True)
        ]
        fg_features, whole_features = self.features(fg), self.features(reals)
        for i, row in enumerate(ok):
            row.update(real_features=fg_features[i].tolist(), real_image_features=whole_features[i].tolist())


def write_real(batch: pa.Table, output: str) -> pa.Table:
    """Write the batch's real-side rows and errors under ``output``; returns counts."""
    return write_outputs(batch, output, REAL_SCHEMA)


def score_inputs(batch: pa.Table, code_version: str) -> pa.Table:
    """Index entries (a generated image's metadata, the method's ``output`` and the real-side
    part holding its condition) -> work rows with the generated image and the condition's real
    side; a missing file, or a condition whose real side failed, is a ``read`` error."""
    entries = [json.loads(entry) for entry in batch.column("entry").to_pylist()]
    real = _rows_of(entries, ["image_id", "target", "person_area", "real_features", "real_image_features"])
    rows = []
    for entry in entries:
        image_id = entry["image_id"]
        row = new_row(
            SCORE_WORK_SCHEMA,
            image_id=image_id,
            dataset=entry.get("dataset"),
            gesture=entry.get("gesture"),
            method=entry["method"],
            size=entry["size"],
            caption=entry["caption"],
            output=entry["output"],
            code_version=code_version,
        )
        side = real.get(image_id)
        if side is None:
            fail(row, "read", f"no real side for this condition: {entry['part']}")
        else:
            try:
                row.update(side, image_bytes=storage.read_bytes(entry["image_uri"]))
            except FileNotFoundError:
                fail(row, "read", f"generated image not found: {entry['image_uri']}")
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=SCORE_WORK_SCHEMA)


class DetectPeople:
    """Ray Data actor stage (CPU): whole-body keypoints of each generated image by Mediapipe
    Holistic, mapped to the 133 points and held to the presence rule as in annotation (a point
    under ``min_visibility`` or outside the image is not a detection); ``detected`` stays null
    when no point is present."""

    def __init__(self, min_detection_confidence: float = 0.5, min_visibility: float = kp.MIN_VISIBILITY):
        from handdiff.annotation.wholebody import HolisticKeypoints

        self.holistic = HolisticKeypoints(min_detection_confidence=min_detection_confidence, min_visibility=min_visibility)

    def __call__(self, batch: pa.Table) -> pa.Table:
        def detect(rows: list[dict]) -> None:
            for row in rows:
                try:
                    keypoints = self.holistic(decode_image(row["image_bytes"]))
                except ImageError as err:
                    fail(row, "decode", str(err))
                    continue
                row["detected"] = keypoints.reshape(-1).tolist() if keypoints[:, 2].max() > 0 else None

        return for_ok_rows(batch, detect, SCORE_WORK_SCHEMA)


class ImageScores:
    """Ray Data actor stage (GPU): per generated image, the CLIP score against its caption, SAM's
    mask of the generated person (prompted with the conditioning body box), and the Inception
    features of the generated foreground and whole image (the real ones come with the row, from
    the real side). A generated image without a person mask (no body to prompt SAM with, or SAM
    finds none) has an empty foreground: it is scored as no person, not as its whole image."""

    def __init__(self, clip: str, sam: str, sam_arch: str, inception: str, device: str = "cpu", box_margin: float = 0.1):
        from handdiff.annotation.sam_masker import SamMasker
        from handdiff.metrics.images import ClipScorer, InceptionFeatures
        from handdiff.models.loading import inception_weights, load_sam

        self.masker = SamMasker(load_sam(sam, sam_arch), device)
        self.clip = ClipScorer(clip, device)
        self.features = InceptionFeatures(inception_weights(inception), device)
        self.margin = box_margin

    def __call__(self, batch: pa.Table) -> pa.Table:
        return for_ok_rows(batch, self._score, SCORE_WORK_SCHEMA)

    def _score(self, rows: list[dict]) -> None:
        from handdiff.annotation.masks import person_prompt
        from handdiff.metrics.images import foreground

        images, ok = _decode(rows, "image_bytes")
        if not ok:
            return
        targets = [np.asarray(r["target"], np.float32).reshape(kp.NUM_KEYPOINTS, 3) for r in ok]
        prompts = [
            [p] if (p := person_prompt(t, img.shape[1], img.shape[0], self.margin)) else [] for t, img in zip(targets, images, strict=True)
        ]
        masks = self.masker(images, prompts)
        fakes = [foreground(img, m[0] if m else np.zeros(img.shape[:2], bool)) for img, m in zip(images, masks, strict=True)]
        clip = self.clip(images, [r["caption"] for r in ok])
        fake_features, fake_whole = self.features(fakes), self.features(images)
        for i, row in enumerate(ok):
            row.update(
                clip_score=float(clip[i]),
                fake_features=fake_features[i].tolist(),
                fake_image_features=fake_whole[i].tolist(),
                person_mask=encode_rle(masks[i][0]) if masks[i] else None,
            )


def write_scores(batch: pa.Table) -> pa.Table:
    """Write the batch's score rows and errors under each row's method ``output``; returns the counts."""
    counts = [
        write_outputs(batch.filter(pc.equal(batch.column("output"), output)), output, SCORE_SCHEMA)
        for output in pc.unique(batch.column("output")).to_pylist()
    ]
    return pa.concat_tables(counts) if counts else COUNTS_SCHEMA.empty_table()
