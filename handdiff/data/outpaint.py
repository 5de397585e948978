"""The stage-2 training set: people framed square, with the canvas, hand mask and skeleton
that the body ControlNet learns to outpaint from (SPEC 3.4 "Outpainting", 5).

Each annotated image with a body and at least one hand mask becomes one row:
- ``image``: the square around the person (``handdiff.data.framing.person_square``, the
  framing the benchmark's conditions use too), resized to ``size``;
- ``mask``: the union of the hand masks in that square;
- ``canvas``: the image with everything but the hands replaced by ``fill`` (our choice:
  mid-grey 127, which the VAE maps to latents near zero, the noise's mean; black would
  put a strong, wrong colour into every blended latent at the mask's soft edge);
- ``skeleton``: body and hands drawn as the OpenPose ControlNet expects
  (``handdiff.data.skeleton``), from the keypoints in the square;
- ``keypoints``: the 133 canonical keypoints in the square's pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyarrow as pa

from handdiff.data import keypoints as kp
from handdiff.data.framing import crop_square, person_square, points_to_square
from handdiff.data.images import encode_image
from handdiff.data.records import KEYPOINTS_TYPE, RLE_TYPE
from handdiff.data.rle import decode_rle, encode_rle
from handdiff.data.skeleton import draw_skeleton

DEFAULT_FILL = 127

OUTPAINT_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("image", pa.binary(), nullable=False),  # JPEG, size x size RGB: the framed person
        pa.field("canvas", pa.binary(), nullable=False),  # PNG, size x size RGB: the hands on `fill`
        pa.field("mask", RLE_TYPE, nullable=False),  # the hands' mask, size x size
        pa.field("skeleton", pa.binary(), nullable=False),  # PNG, size x size RGB: OpenPose body + hands
        pa.field("keypoints", KEYPOINTS_TYPE, nullable=False),  # 399 floats: 133 x (x, y, score) in the square's pixels
        pa.field("box", pa.list_(pa.float32()), nullable=False),  # [x0, y0, side] of the square in the source image, px
        pa.field("size", pa.int32(), nullable=False),
        pa.field("latents", pa.binary()),  # optional: VAE latents of image, float16 (4, size/8, size/8), scaled
        pa.field("canvas_latents", pa.binary()),  # optional: the same of canvas
        pa.field("text_embedding", pa.binary()),  # optional: CLIP text embedding, float16 (77, D)
        pa.field("code_version", pa.string(), nullable=False),
    ]
)


class NotOutpaintable(ValueError):
    """An annotated record that cannot become an outpaint row (the reason is the message)."""


def make_canvas(image: np.ndarray, mask: np.ndarray, fill: int = DEFAULT_FILL) -> np.ndarray:
    """(H, W, 3) uint8 image, (H, W) bool hand mask -> the hands on a ``fill`` background."""
    return np.where(mask[..., None], image, np.uint8(fill))


def outpaint_keypoints(record: dict) -> np.ndarray:
    """(133, 3) keypoints of an annotated record that can be outpainted; raises
    ``NotOutpaintable`` (without a caption, a body or hand masks)."""
    if not record.get("caption"):
        raise NotOutpaintable("no caption")
    keypoints = np.asarray(record.get("keypoints") or [], np.float32)
    if keypoints.size != kp.NUM_KEYPOINTS * 3 or record.get("person_box") is None or keypoints.reshape(-1, 3)[kp.BODY, 2].max() <= 0:
        raise NotOutpaintable("no body keypoints")
    if not record.get("hand_masks"):
        raise NotOutpaintable("no hand masks")
    return keypoints.reshape(kp.NUM_KEYPOINTS, 3)


def make_outpaint_row(record: dict, image: np.ndarray, size: int, margin: float, fill: int = DEFAULT_FILL, jpeg_quality: int = 95) -> dict:
    """The ``OUTPAINT_SCHEMA`` image fields of one annotated record and its decoded image.

    Raises ``NotOutpaintable`` for a record without a caption, a body or hand masks, or
    whose hands fall outside the person's square.
    """
    keypoints = outpaint_keypoints(record)
    height, width = image.shape[:2]
    x0, y0, side = person_square(record["person_box"], margin, width, height)
    hands = np.zeros((height, width), np.uint8)
    for rle in record["hand_masks"]:
        hands |= decode_rle(rle)
    mask = crop_square(hands, x0, y0, side, size, cv2.INTER_NEAREST).astype(bool)
    if not mask.any():
        raise NotOutpaintable("hand masks fall outside the person's square")
    framed = crop_square(image, x0, y0, side, size)
    points = points_to_square(keypoints, x0, y0, side, size)
    return {
        "image": encode_image(framed, quality=jpeg_quality),
        "canvas": encode_image(make_canvas(framed, mask, fill), "PNG"),
        "mask": encode_rle(mask),
        "skeleton": encode_image(draw_skeleton(points, size), "PNG"),
        "keypoints": points.reshape(-1),
        "box": [x0, y0, side],
        "size": size,
    }
