"""The annotation stages over Arrow batches. Stages with a model are callable classes
(model loaded in ``__init__``, ``__call__(batch) -> batch``) that the annotate job runs
in actor pools; stateless stages are plain functions, run as tasks, so that they hold
no CPU between batches. None of them knows of Ray: the job sets their resources
where it calls ``map_batches``.

Every stage takes and returns ``WORK_SCHEMA`` tables: ``ANNOTATION_SCHEMA``'s fields
plus the image bytes, the dataset's own keypoints, the row's ``Plan`` and a status
(``handdiff.data.work_rows``); ``write_parts`` finally splits records, errors and filtered
rows into their datasets. What differs between datasets (own keypoints or Mediapipe, person
masks, LLaVA or a caption table, the LAION-Human filter, where rows are written) is in the
plan each row carries, so that one pipeline, with one actor pool per model, annotates every
dataset of a job.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from handdiff.annotation.masks import dilate, expand_box, hand_prompt, person_prompt
from handdiff.data import keypoints as kp
from handdiff.data.images import ImageError, decode_image, read_image_bytes
from handdiff.data.readers import open_reader
from handdiff.data.records import ANNOTATION_SCHEMA, KEYPOINTS_TYPE, is_error, keypoints_from_column, to_table
from handdiff.data.rle import decode_rle, encode_rle, rle_area
from handdiff.data.work_rows import COUNTS_SCHEMA, FILTERED, fail, for_ok_rows, new_row, work_schema, write_outputs

WORK_SCHEMA = work_schema(
    ANNOTATION_SCHEMA,
    [
        pa.field("image_bytes", pa.binary()),
        pa.field("dataset_keypoints", KEYPOINTS_TYPE),
        pa.field("dataset_person_count", pa.int32()),
        pa.field("mask_uri", pa.string()),
        pa.field("plan", pa.string()),
    ],
)


@dataclass(frozen=True)
class Plan:
    """What the stages do with one dataset's rows; every work row carries its dataset's plan (JSON)."""

    output: str
    """Where ``write_parts`` writes the rows: ``<output>/{records,errors,filtered}/``."""
    keypoints: Literal["mediapipe", "dataset"] = "mediapipe"
    person_mask: bool = True
    captions: Literal["llava", "table"] = "llava"
    caption_table: str | None = None
    filter: bool = False
    """LAION-Human's people-and-hands filter."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def of(row: dict[str, Any]) -> Plan:
        return _plan(row["plan"])


@functools.lru_cache(maxsize=64)
def _plan(text: str) -> Plan:
    return Plan(**json.loads(text))


def _rows(batch: pa.Table) -> list[dict[str, Any]]:
    return batch.to_pylist()


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return to_table(rows, WORK_SCHEMA)


def _for_ok_rows(batch: pa.Table, fn: Callable[[list[dict[str, Any]]], None]) -> pa.Table:
    return for_ok_rows(batch, fn, WORK_SCHEMA)


def to_records(batch: pa.Table, reader_options: dict[str, Any], annotators: dict[str, Any], code_version: str, plan: Plan) -> pa.Table:
    """Index entries -> work rows carrying ``plan``, through the dataset's reader (stage ``read``)."""
    reader = open_reader(**reader_options)
    annotators_json, plan_json = json.dumps(annotators, sort_keys=True), plan.to_json()
    out = []
    for entry_row in _rows(batch):
        record = reader.record(json.loads(entry_row["entry"]))
        row = new_row(
            WORK_SCHEMA,
            image_id=record["image_id"],
            dataset=record["dataset"],
            annotators=annotators_json,
            code_version=code_version,
            plan=plan_json,
        )
        if is_error(record):
            fail(row, record["stage"], record["reason"])
            out.append(row)
            continue
        source = json.loads(record["source"] or "{}")
        source.update(hand_boxes=record["hand_boxes"], hand_sides=record["hand_sides"], labels=record["labels"], text=record["caption"])
        row.update({k: record[k] for k in ("split", "image_uri", "width", "height", "gesture", "sequence", "camera", "frame", "mask_uri")})
        row.update(
            dataset_keypoints=record["keypoints"], dataset_person_count=record["person_count"], source=json.dumps(source, sort_keys=True)
        )
        out.append(row)
    return _table(out)


def load_images(batch: pa.Table) -> pa.Table:
    """Read each image once and check that it decodes (stage ``decode``); later stages
    decode the kept bytes instead of reading storage again."""

    def load(rows):
        for row in rows:
            try:
                data = read_image_bytes(row["image_uri"])
                height, width = decode_image(data).shape[:2]
            except ImageError as err:
                fail(row, "decode", str(err))
                continue
            if row["width"] and (row["width"], row["height"]) != (width, height):
                fail(row, "decode", f"image is {width}x{height}, the annotation says {row['width']}x{row['height']}")
                continue
            row.update(image_bytes=data, width=width, height=height)

    return _for_ok_rows(batch, load)


class WholeBodyKeypoints:
    """Whole-body keypoints, person count, hand boxes (stage ``keypoints``).

    A row planned for ``mediapipe``: Mediapipe Holistic; a hand Holistic misses is taken
    from the dataset's own keypoints when ``dataset_hands`` (HaGRID ships landmarks).
    The person count is the largest of: faces found, 1 if Holistic found a body,
    the dataset's own count. Planned for ``dataset``: the dataset's keypoints (InterHand2.6M,
    Re:InterHand), no person count. Holistic's points follow the presence rule
    (``min_visibility``, inside the image; ``handdiff.data.keypoints.seen_points``). An image
    without a person or without a hand of ``min_hand_points`` present points is an error.
    ``mediapipe=False``: no row is expected to need Holistic, which is then not loaded (it
    would be at the first row that does).
    """

    def __init__(
        self,
        dataset_hands: bool = True,
        min_hand_points: int = 5,
        min_detection_confidence: float = 0.5,
        min_visibility: float = kp.MIN_VISIBILITY,
        mediapipe: bool = True,
    ):
        self.dataset_hands, self.min_hand_points, self.min_confidence = dataset_hands, min_hand_points, min_detection_confidence
        self.min_visibility = min_visibility
        self.holistic = self.faces = None
        if mediapipe:
            self._load_mediapipe()

    def _load_mediapipe(self) -> None:
        from handdiff.annotation.wholebody import FaceCounter, HolisticKeypoints

        self.holistic = HolisticKeypoints(min_detection_confidence=self.min_confidence, min_visibility=self.min_visibility)
        self.faces = FaceCounter(self.min_confidence)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return _for_ok_rows(batch, lambda rows: [self._annotate(r) for r in rows])

    def _annotate(self, row: dict[str, Any]) -> None:
        dataset_kps = keypoints_from_column(row["dataset_keypoints"])
        if Plan.of(row).keypoints == "dataset":
            if dataset_kps is None:
                return fail(row, "keypoints", "the dataset has no keypoints for this image")
            keypoints, origin, people = dataset_kps, "dataset", None
        else:
            if self.holistic is None:
                self._load_mediapipe()
            image = decode_image(row["image_bytes"])
            keypoints, origin = self.holistic(image), "mediapipe"
            body_found = keypoints[kp.BODY, 2].max() > 0
            people = max(self.faces(image), int(body_found), row["dataset_person_count"] or 0)
            if people == 0:
                return fail(row, "keypoints", "no person detected")
            if self.dataset_hands and dataset_kps is not None:
                for side in kp.SIDES:
                    hand = kp.hand_slice(side)
                    if keypoints[hand, 2].max() == 0 and (dataset_kps[hand, 2] > 0).sum() >= self.min_hand_points:
                        keypoints[hand], origin = dataset_kps[hand], "mediapipe+dataset_hands"
        sides = kp.hands_present(keypoints, self.min_hand_points)
        if not sides:
            return fail(row, "keypoints", "no hands detected")
        body = keypoints[: kp.HANDS.start]
        person_box = kp.hand_box(body[:, :2], body[:, 2]) if body[kp.BODY, 2].max() > 0 else None
        row.update(
            keypoints=keypoints,
            keypoints_source=origin,
            person_count=people,
            person_box=person_box,
            hand_sides=sides,
            hand_boxes=[kp.hand_box(keypoints[kp.hand_slice(s), :2], keypoints[kp.hand_slice(s), 2]) for s in sides],
        )


class HandMasks:
    """Hand masks (and the person mask, where the row's plan asks for one) from SAM, or the
    release's own masks where the dataset has them (stage ``masks``)."""

    def __init__(
        self,
        sam_location: str,
        arch: str = "vit_h",
        device: str = "cpu",
        dilation: int = 5,
        box_margin: float = 0.1,
        use_release_masks: bool = True,
    ):
        from handdiff.annotation.sam_masker import SamMasker
        from handdiff.models.loading import load_sam

        self.masker = SamMasker(load_sam(sam_location, arch), device)
        self.dilation, self.margin, self.use_release_masks = dilation, box_margin, use_release_masks

    def __call__(self, batch: pa.Table) -> pa.Table:
        return _for_ok_rows(batch, self._annotate)

    def _annotate(self, rows: list[dict[str, Any]]) -> None:
        images, prompts, release, person = [], [], [], []
        for row in rows:
            keypoints = keypoints_from_column(row["keypoints"])
            w, h = row["width"], row["height"]
            release.append(self.use_release_masks and row["mask_uri"] is not None)
            hands = [] if release[-1] else [hand_prompt(keypoints[kp.hand_slice(s)], w, h, self.margin) for s in row["hand_sides"]]
            body = person_prompt(keypoints, w, h, self.margin) if Plan.of(row).person_mask else None
            person.append(body is not None)
            images.append(decode_image(row["image_bytes"]))
            prompts.append(hands + ([body] if body is not None else []))
        masks = self.masker(images, prompts)
        for row, image_masks, from_release, has_person in zip(rows, masks, release, person, strict=True):
            if has_person:
                row["person_mask"] = encode_rle(image_masks.pop())  # the person's prompt came last
            if from_release:
                try:
                    hands = self._release_hand_masks(row)
                except ImageError as err:
                    fail(row, "masks", f"release mask {row['mask_uri']}: {err}")
                    continue
                row.update(hand_masks=hands, hand_mask_source="release")
            else:
                row.update(hand_masks=[encode_rle(dilate(m, self.dilation)) for m in image_masks], hand_mask_source="sam")

    def _release_hand_masks(self, row: dict[str, Any]) -> list[dict]:
        """The release's mask holds all hands: each hand gets its part inside its box (with margin)."""
        mask = decode_image(read_image_bytes(row["mask_uri"]))[..., 0] > 127
        out = []
        for box in row["hand_boxes"]:
            x0, y0, x1, y1 = np.round(expand_box(box, self.margin, row["width"], row["height"])).astype(int)
            hand = np.zeros_like(mask)
            hand[y0:y1, x0:x1] = mask[y0:y1, x0:x1]
            out.append(encode_rle(hand))
        return out


class LlavaCaptions:
    """Captions from LLaVA with the configured instruction, batched, for the rows planned for
    ``llava`` (stage ``caption``)."""

    def __init__(self, location: str, instruction: str, max_new_tokens: int = 60, device: str = "cpu", dtype: str = "float32"):
        import torch

        from handdiff.annotation.captions import LlavaCaptioner
        from handdiff.models.loading import load_captioner

        model, processor = load_captioner(location, dtype=getattr(torch, dtype))
        self.captioner = LlavaCaptioner(model.to(device), processor, instruction, max_new_tokens)

    def __call__(self, batch: pa.Table) -> pa.Table:
        def caption(rows):
            rows = [r for r in rows if Plan.of(r).captions == "llava"]
            if not rows:
                return
            texts = self.captioner([decode_image(r["image_bytes"]) for r in rows])
            for row, text in zip(rows, texts, strict=True):
                row.update(caption=text, caption_source="llava")

        return _for_ok_rows(batch, caption)


@functools.lru_cache(maxsize=8)
def _caption_table(uri: str):
    from handdiff.annotation.captions import CaptionTable

    return CaptionTable(uri)


def table_captions(batch: pa.Table) -> pa.Table:
    """Per-sequence captions from the user-supplied table the row's plan names, for the rows
    planned for ``table`` (stage ``caption``)."""

    def caption(rows):
        for row in rows:
            plan = Plan.of(row)
            if plan.captions != "table":
                continue
            text = _caption_table(plan.caption_table)(row["sequence"])
            if text is None:
                fail(row, "caption", f"no caption for sequence {row['sequence']!r} in {plan.caption_table}")
            else:
                row.update(caption=text, caption_source="table")

    return _for_ok_rows(batch, caption)


def prefilter_people(batch: pa.Table, people: int = 1) -> pa.Table:
    """Rows whose plan asks for the people filter and whose dataset's own poses already count more
    than ``people`` people (LAION-Human's HumanSD pose files): ``filtered`` before any model sees
    them. ``filter_people`` would drop them anyway, after Mediapipe: its count is the largest of
    the faces, the body and the dataset's own."""

    def drop(rows):
        for row in rows:
            n = row["dataset_person_count"]
            if Plan.of(row).filter and n is not None and n > people:
                row.update(status=FILTERED, error_stage="filter", error_reason=f"{n} people in the dataset's poses, not {people}")

    return _for_ok_rows(batch, drop)


def filter_people(batch: pa.Table, people: int = 1) -> pa.Table:
    """LAION-Human's people filter, right after the keypoints (before SAM): rows whose plan asks
    for it and whose ``person_count`` is not ``people`` become ``filtered`` with the reason."""

    def keep(rows):
        for row in rows:
            if Plan.of(row).filter and row["person_count"] != people:
                row.update(status=FILTERED, error_stage="filter", error_reason=f"{row['person_count']} people, not {people}")

    return _for_ok_rows(batch, keep)


def filter_hand_pixels(batch: pa.Table, min_hand_pixels: int = 2500) -> pa.Table:
    """LAION-Human's hand filter, right after the masks (before LLaVA, so only the rows kept are
    captioned): rows whose plan asks for it with under ``min_hand_pixels`` of hand mask become
    ``filtered`` with the reason."""

    def keep(rows):
        for row in rows:
            if Plan.of(row).filter and (area := rle_area(row["hand_masks"])) < min_hand_pixels:
                row.update(status=FILTERED, error_stage="filter", error_reason=f"hand mask of {area} px, under {min_hand_pixels}")

    return _for_ok_rows(batch, keep)


def write_parts(batch: pa.Table) -> pa.Table:
    """Write the batch's annotated records, errors and filtered rows under their plan's output
    (a batch may hold several datasets' rows); returns the counts, a row per output."""
    plans = batch.column("plan").to_pylist()
    counts = [COUNTS_SCHEMA.empty_table()]
    for plan in dict.fromkeys(plans):
        rows = batch.filter(pa.array([p == plan for p in plans]))
        counts.append(write_outputs(rows, _plan(plan).output, ANNOTATION_SCHEMA))
    return pa.concat_tables(counts)


def decode_hand_masks(record: dict[str, Any]) -> np.ndarray:
    """The union of a record's hand masks: (H, W) bool."""
    mask = np.zeros((record["height"], record["width"]), bool)
    for rle in record["hand_masks"]:
        mask |= decode_rle(rle)
    return mask
