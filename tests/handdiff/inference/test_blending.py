from __future__ import annotations

import pytest
import torch

from handdiff.inference.blending import blend_masks, dilate, sequential_mask_expansion


def hand() -> torch.Tensor:
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 14:18, 12:16] = 1
    return mask


def test_sme_masks_shrink_monotonically_from_the_largest_to_the_exact_mask():
    masks = sequential_mask_expansion(hand(), steps=5, kernel=3)
    assert len(masks) == 5
    assert torch.equal(masks[-1], hand())  # the last masked step: the exact mask
    areas = [int(m.sum()) for m in masks]
    assert areas == sorted(areas, reverse=True) and len(set(areas)) == 5  # strictly shrinking
    for bigger, smaller in zip(masks, masks[1:], strict=False):
        assert (bigger >= smaller).all()  # each holds the next
    assert areas[0] == (4 + 2 * 4) * (4 + 2 * 4)  # 4 dilations by 3x3: one pixel per side each
    assert int(sequential_mask_expansion(hand(), steps=3, kernel=5)[0].sum()) == (4 + 2 * 4) ** 2  # 2 dilations by 5x5


def test_dilation_kernel_and_edge_cases():
    assert torch.equal(dilate(hand(), 1), hand())
    assert len(sequential_mask_expansion(hand(), steps=1)) == 1 and torch.equal(sequential_mask_expansion(hand(), 1)[0], hand())
    with pytest.raises(ValueError, match="odd"):
        sequential_mask_expansion(hand(), 3, kernel=4)


def test_each_strategy_blends_its_region():
    square = torch.zeros(1, 1, 32, 32)
    square[..., 8:24, 8:24] = 1
    naive = blend_masks("naive", hand(), square, steps=3, latent_size=(4, 4))
    bbox = blend_masks("bbox", hand(), square, steps=3, latent_size=(4, 4))
    sme = blend_masks("sme", hand(), square, steps=3, latent_size=(4, 4))
    assert len(naive) == len(bbox) == len(sme) == 3
    assert all(torch.equal(m, naive[0]) for m in naive) and torch.equal(sme[-1], naive[0])
    assert bbox[0][0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert sme[0].sum() > sme[-1].sum()
    with pytest.raises(ValueError, match="one of sme, naive, bbox"):
        blend_masks("soft", hand(), square, 3, (4, 4))
