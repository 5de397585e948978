"""The stages of the ``score`` job, Ray-free: generated images joined with their conditions
(tasks), then per image the detected whole-body keypoints (Mediapipe Holistic, as in
annotation; CPU actors, ``DetectPeople``) and the CLIP score against the caption and the 192-d
Inception features of the real and generated foregrounds (the generated person masked by SAM
prompted with the conditioning body box; the real one by its annotated person mask; GPU
actors, ``ImageScores``). The figures are computed from these
rows afterwards (``handdiff.metrics.summary``).
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
from handdiff.data.work_rows import fail, for_ok_rows, new_row, work_schema, write_outputs

FEATURES_TYPE = pa.list_(pa.float32())
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
        pa.field("real_features", FEATURES_TYPE, nullable=False),  # 192: Inception, real foreground
        pa.field("fake_features", FEATURES_TYPE, nullable=False),  # 192: Inception, generated foreground
        pa.field("real_image_features", FEATURES_TYPE),  # 192: Inception, real whole image (Table II's FID)
        pa.field("fake_image_features", FEATURES_TYPE),  # 192: Inception, generated whole image
        pa.field("person_mask", RLE_TYPE),  # SAM's mask of the generated person
        pa.field("code_version", pa.string(), nullable=False),
    ]
)
_INPUTS = [pa.field("caption", pa.string()), pa.field("image_bytes", pa.binary()), pa.field("real_bytes", pa.binary()), pa.field("real_mask", RLE_TYPE)]
SCORE_WORK_SCHEMA = work_schema(SCORE_SCHEMA, _INPUTS)


def score_inputs(batch: pa.Table, code_version: str) -> pa.Table:
    """Index entries (a generated image's metadata + its condition's part) -> work rows with the
    generated image, the real image and mask, the target keypoints; a missing file is a ``read`` error."""
    entries = [(row["image_id"], json.loads(row["entry"])) for row in batch.to_pylist()]
    by_part: dict[str, list[str]] = defaultdict(list)
    for image_id, entry in entries:
        by_part[entry["part"]].append(image_id)
    conditions = {}
    for part, ids in by_part.items():
        table = read_part(part, ["image_id", "keypoints", "real_image", "person_mask"])
        conditions.update({r["image_id"]: r for r in table.filter(pc.is_in(table.column("image_id"), pa.array(ids))).to_pylist()})
    rows = []
    for image_id, entry in entries:
        row = new_row(SCORE_WORK_SCHEMA, image_id=image_id, dataset=entry.get("dataset"), gesture=entry.get("gesture"), method=entry["method"],
                      size=entry["size"], caption=entry["caption"], code_version=code_version)  # fmt: skip
        condition = conditions.get(image_id)
        if condition is None:
            fail(row, "read", f"not in its condition part {entry['part']}")
        else:
            try:
                mask = condition["person_mask"]
                row.update(target=condition["keypoints"], real_bytes=condition["real_image"], real_mask=mask,
                           person_area=float(rle_area([mask])) if mask else None, image_bytes=storage.read_bytes(entry["image_uri"]))  # fmt: skip
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
    """Ray Data actor stage (GPU): per image, the CLIP score against its caption, SAM's mask of
    the generated person (prompted with the conditioning body box), and the Inception features
    of the real and generated foregrounds and whole images. A generated image without a person
    mask (no body to prompt SAM with, or SAM finds none) has an empty foreground: it is scored
    as no person, not as its whole image."""

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

        images, reals, ok = [], [], []
        for row in rows:
            try:
                images.append(decode_image(row["image_bytes"]))
                reals.append(decode_image(row["real_bytes"]))
                ok.append(row)
            except ImageError as err:
                fail(row, "decode", str(err))
        if not ok:
            return
        targets = [np.asarray(r["target"], np.float32).reshape(kp.NUM_KEYPOINTS, 3) for r in ok]
        prompts = [[p] if (p := person_prompt(t, img.shape[1], img.shape[0], self.margin)) else [] for t, img in zip(targets, images, strict=True)]
        masks = self.masker(images, prompts)
        fakes = [foreground(img, m[0] if m else np.zeros(img.shape[:2], bool)) for img, m in zip(images, masks, strict=True)]
        real_fg = [foreground(real, decode_rle(r["real_mask"])) for real, r in zip(reals, ok, strict=True)]
        clip = self.clip(images, [r["caption"] for r in ok])
        fake_features, real_features = self.features(fakes), self.features(real_fg)
        fake_whole, real_whole = self.features(images), self.features(reals)
        for i, row in enumerate(ok):
            row.update(clip_score=float(clip[i]), fake_features=fake_features[i].tolist(), real_features=real_features[i].tolist(),
                       fake_image_features=fake_whole[i].tolist(), real_image_features=real_whole[i].tolist(),
                       person_mask=encode_rle(masks[i][0]) if masks[i] else None)  # fmt: skip


def write_scores(batch: pa.Table, output: str) -> pa.Table:
    """Write the batch's score rows and errors under ``output``; returns counts."""
    return write_outputs(batch, output, SCORE_SCHEMA)
