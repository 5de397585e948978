"""The stages of the ``generate`` job, Ray-free like the other jobs' stages: index entries to
work rows (tasks), a generator (actors, ``GenerateImages``), image and metadata writing (tasks).

Metadata rows (``GENERATION_SCHEMA``) say what made each image: method, its settings
(strategy and hand-off for ours), seed, per-stage seconds, model ids and code version;
the image is a PNG at ``image_uri``. A condition that cannot be generated is an error row.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from handdiff import storage
from handdiff.data import keypoints as kp
from handdiff.data.images import encode_image
from handdiff.data.work_rows import OK, fail, for_ok_rows, new_row, work_schema, write_outputs

GENERATION_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),  # the condition's id
        pa.field("dataset", pa.string()),
        pa.field("gesture", pa.string()),
        pa.field("method", pa.string(), nullable=False),  # handdiff | a baseline
        pa.field("strategy", pa.string()),  # ours: sme | naive | bbox
        pa.field("handoff", pa.string()),  # ours: pixel | latent
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("size", pa.int32(), nullable=False),
        pa.field("image_uri", pa.string(), nullable=False),  # PNG, size x size
        pa.field("canvas_uri", pa.string()),  # PNG of the method's intermediate (ours: stage-1 hands on the canvas), if kept
        pa.field("stage1_uri", pa.string()),  # ours, if kept: PNG of stage 1's crops over their mask probabilities
        pa.field("seconds", pa.float32(), nullable=False),  # this image's share of the batch's generation time
        pa.field("stage_seconds", pa.string(), nullable=False),  # JSON: per stage
        pa.field("details", pa.string()),  # JSON: the method's own (ours: hands, boxes, per-step mask sizes)
        pa.field("models", pa.string(), nullable=False),  # JSON: model ids and settings
        pa.field("code_version", pa.string(), nullable=False),
    ]
)
_BYTES = [
    pa.field("png", pa.binary()),
    pa.field("canvas_png", pa.binary()),
    pa.field("stage1_png", pa.binary()),
    pa.field("keypoints", pa.list_(pa.float32())),
]
GENERATION_WORK_SCHEMA = work_schema(GENERATION_SCHEMA, _BYTES)


def conditions_to_rows(batch: pa.Table, method: str, code_version: str) -> pa.Table:
    """Index entries (a condition row as JSON) -> generation work rows; a malformed condition is a ``read`` error."""
    rows = []
    for entry in batch.to_pylist():
        condition = json.loads(entry["entry"])
        row = new_row(
            GENERATION_WORK_SCHEMA,
            image_id=entry["image_id"],
            dataset=condition.get("dataset"),
            gesture=condition.get("gesture"),
            method=method,
            seed=condition.get("seed"),
            caption=condition.get("caption"),
            size=condition.get("size"),
            code_version=code_version,
        )
        keypoints = np.asarray(condition.get("keypoints") or [], np.float32)
        if keypoints.size != kp.NUM_KEYPOINTS * 3 or not np.isfinite(keypoints).all():
            fail(row, "read", f"keypoints: expected {kp.NUM_KEYPOINTS * 3} finite floats, got {keypoints.size}")
        elif not condition.get("caption") or not condition.get("size") or condition.get("seed") is None:
            fail(row, "read", "condition needs caption, size and seed")
        else:
            row["keypoints"] = keypoints.tolist()
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=GENERATION_WORK_SCHEMA)


class GenerateImages:
    """Ray Data actor stage: a generator built once (``make_generator(method, **options)``),
    then each batch generated in one call. A batch that fails becomes error rows."""

    def __init__(self, method: str, options: dict, keep_canvas: bool = True):
        from handdiff.inference.registry import make_generator

        self.generator = make_generator(method, **options)
        self.models = json.dumps(self.generator.describe(), sort_keys=True, default=str)
        self.keep_canvas = keep_canvas

    def __call__(self, batch: pa.Table) -> pa.Table:
        def generate(rows: list[dict]) -> None:
            if not rows:
                return
            try:
                made = self.generator.generate(rows)
            except Exception as err:
                for row in rows:
                    fail(row, "generate", f"{type(err).__name__}: {err}")
                return
            settings = self.generator.describe()
            for row, out in zip(rows, made, strict=True):
                row.update(
                    png=encode_image(out.image, "PNG"),
                    seconds=float(sum(out.seconds.values())),
                    models=self.models,
                    stage_seconds=json.dumps(out.seconds),
                    details=json.dumps(out.details, default=float),
                    strategy=settings.get("strategy"),
                    handoff=settings.get("handoff"),
                )
                if self.keep_canvas and out.canvas is not None:
                    row["canvas_png"] = encode_image(out.canvas, "PNG")
                if self.keep_canvas and out.stage1 is not None:
                    row["stage1_png"] = encode_image(out.stage1, "PNG")

        return for_ok_rows(batch, generate, GENERATION_WORK_SCHEMA)


def image_path(output: str, image_id: str, kind: str = "images") -> str:
    """``<output>/<kind>/<image_id>.png``: one file per condition, so a rerun rewrites, never adds."""
    return storage.join(output, kind, f"{image_id}.png")


def write_generated(batch: pa.Table, output: str) -> pa.Table:
    """Write each generated image (and its canvas and stage-1 strip) as PNG, then the metadata and errors as parts; returns counts."""
    rows = batch.to_pylist()
    for row in rows:
        if row["status"] != OK:
            continue
        row["image_uri"] = image_path(output, row["image_id"])
        storage.write_bytes(row["image_uri"], row["png"])
        for kind, png, uri in (("canvases", "canvas_png", "canvas_uri"), ("stage1", "stage1_png", "stage1_uri")):
            if row[png] is not None:
                row[uri] = image_path(output, row["image_id"], kind)
                storage.write_bytes(row[uri], row[png])
    return write_outputs(pa.Table.from_pylist(rows, schema=GENERATION_WORK_SCHEMA), output, GENERATION_SCHEMA)
