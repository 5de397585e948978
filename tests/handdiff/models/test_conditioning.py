from __future__ import annotations

import torch

from handdiff.models.conditioning import drop_mask_channel, finger_heatmaps, hand_condition


def keypoints_with(points: dict[int, tuple[float, float]]) -> torch.Tensor:
    k = torch.zeros(1, 42, 3)
    for i, (x, y) in points.items():
        k[0, i] = torch.tensor([x, y, 1.0])
    return k


def test_each_finger_has_its_channel_with_the_wrist_in_all_of_its_hand():
    # left hand: wrist (0) at (10, 10), thumb tip (4) at (30, 12); right hand: index tip (21 + 8) at (50, 40)
    maps = finger_heatmaps(keypoints_with({0: (10, 10), 4: (30, 12), 29: (50, 40)}), 64, 64, sigma=2.0)
    assert maps.shape == (1, 10, 64, 64)
    assert torch.isclose(maps[0, 0, 12, 30], torch.tensor(1.0))  # left thumb channel, at the tip
    for finger in range(5):  # the left wrist shows in every left finger channel
        assert torch.isclose(maps[0, finger, 10, 10], torch.tensor(1.0))
        assert maps[0, 5 + finger, 10, 10] < 1e-6  # and in no right-hand channel
    assert torch.isclose(maps[0, 6, 40, 50], torch.tensor(1.0))  # right index channel
    assert maps[0, 1, 12, 30] < 1e-6  # the thumb is not in the left index channel
    assert maps[0, 9].max() < 1e-6  # absent joints (right pinky) draw nothing
    assert torch.isclose(maps[0, 0, 12, 32], torch.exp(torch.tensor(-4.0 / 8.0)))  # a Gaussian of std 2 px


def test_condition_stacks_ten_heatmaps_and_the_mask_last():
    mask = torch.zeros(1, 32, 32)
    mask[0, 5:9, 5:9] = 1
    c = hand_condition(keypoints_with({0: (3, 3)}), mask, sigma=1.5)
    assert c.shape == (1, 11, 32, 32) and torch.equal(c[0, 10], mask[0])


def test_mask_channel_is_dropped_at_the_configured_rate():
    n = 4000
    condition = torch.ones(n, 11, 2, 2)
    out = drop_mask_channel(condition, 0.5, torch.Generator().manual_seed(0))
    dropped = (out[:, 10].sum((1, 2)) == 0).float().mean().item()
    assert abs(dropped - 0.5) < 0.04  # 5 standard deviations of a binomial(4000, 0.5) fraction
    assert torch.equal(out[:, :10], condition[:, :10]) and torch.equal(condition, torch.ones(n, 11, 2, 2))
    assert drop_mask_channel(condition, 0.0)[:, 10].min() == 1 and drop_mask_channel(condition, 1.0)[:, 10].max() == 0
