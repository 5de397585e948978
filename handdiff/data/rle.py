"""Masks as COCO run-length encoding (pycocotools), the format every mask handdiff writes uses."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


def encode_rle(mask: np.ndarray) -> dict:
    """(H, W) bool/uint8 mask -> COCO compressed RLE ``{"size": [H, W], "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict) -> np.ndarray:
    """COCO RLE (as ``encode_rle`` writes it) -> (H, W) bool."""
    return mask_utils.decode({"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}).astype(bool)


def rle_area(rles: list[dict]) -> int:
    """Pixels covered by the union of ``rles``."""
    if not rles:
        return 0
    coco = [{"size": list(r["size"]), "counts": r["counts"].encode("ascii")} for r in rles]
    return int(mask_utils.area(mask_utils.merge(coco, intersect=False)))
