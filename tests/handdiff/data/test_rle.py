"""Masks as COCO RLE (handdiff.data.rle): what pycocotools itself reads, both ways."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from handdiff.data.rle import decode_rle, encode_rle, rle_area


def masks() -> tuple[np.ndarray, np.ndarray]:
    a, b = np.zeros((7, 9), bool), np.zeros((7, 9), bool)
    a[1:4, 2:6] = True  # 12 pixels
    b[3:6, 5:8] = True  # 9 pixels, 1 shared with a
    return a, b


def test_a_mask_round_trips_and_pycocotools_reads_what_is_written():
    a, _ = masks()
    rle = encode_rle(a)
    assert rle["size"] == [7, 9] and isinstance(rle["counts"], str)  # JSON- and Parquet-friendly
    assert np.array_equal(decode_rle(rle), a)
    assert np.array_equal(mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool), a)
    assert decode_rle(encode_rle(np.zeros((3, 4), np.uint8))).shape == (3, 4)


def test_the_area_is_the_union_of_the_masks():
    a, b = masks()
    assert rle_area([encode_rle(a), encode_rle(b)]) == int((a | b).sum()) == 20
    assert rle_area([]) == 0
