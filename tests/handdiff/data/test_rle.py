"""Masks as COCO RLE (handdiff.data.rle): what pycocotools itself reads, both ways."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from handdiff.data.rle import decode_rle, encode_rle, rle_area


def test_rle_round_trip_is_coco_rle():
    mask = np.zeros((37, 53), bool)
    mask[5:20, 10:40] = True
    mask[30, 52] = True
    rle = encode_rle(mask)
    assert rle["size"] == [37, 53] and isinstance(rle["counts"], str)
    assert np.array_equal(decode_rle(rle), mask)
    # pycocotools itself reads what we store
    coco = {"size": rle["size"], "counts": rle["counts"].encode()}
    assert mask_utils.area(coco) == mask.sum() and np.array_equal(mask_utils.decode(coco).astype(bool), mask)


def test_rle_area_counts_the_union():
    a, b = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    a[0:5, 0:5] = True
    b[3:8, 3:8] = True
    assert rle_area([encode_rle(a), encode_rle(b)]) == (a | b).sum() == 25 + 25 - 4
    assert rle_area([]) == 0
