"""The stage-1 condition ``c_p``: 10 per-finger keypoint heatmaps and the hand mask.

Channel order (our choice, fixed): the person's left hand thumb, index, middle,
ring, pinky, then the right hand's, then the mask. Each finger channel holds a
Gaussian at every joint of that finger, the wrist included, so that fingers stay
separable where they overlap.
"""

from __future__ import annotations

import torch

from handdiff.data.keypoints import FINGERS, finger_joints

CONDITION_CHANNELS = 11
HAND_POINTS = 42
"""Crop keypoints: the left hand's 21 canonical points, then the right hand's."""


def finger_heatmaps(keypoints: torch.Tensor, height: int, width: int, sigma: float) -> torch.Tensor:
    """Per-finger Gaussian heatmaps.

    Args:
        keypoints: (B, 42, 3) crop keypoints (x_px, y_px, score); score 0 = absent.
        height, width: output size, pixels. sigma: Gaussian std, pixels.
    Returns:
        (B, 10, H, W) float in [0, 1]: the max of the Gaussians of each finger's joints.
    """
    b = keypoints.shape[0]
    ys = torch.arange(height, device=keypoints.device, dtype=torch.float32).view(1, 1, height, 1)
    xs = torch.arange(width, device=keypoints.device, dtype=torch.float32).view(1, 1, 1, width)
    channels = []
    for offset in (0, 21):
        for finger in FINGERS:
            joints = keypoints[:, [offset + j for j in finger_joints(finger)]].float()  # (B, 5, 3)
            x, y, present = joints[..., 0, None, None], joints[..., 1, None, None], (joints[..., 2] > 0).float()[..., None, None]
            gauss = torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)) * present  # (B, 5, H, W)
            channels.append(gauss.amax(dim=1))
    return torch.stack(channels, dim=1).view(b, 10, height, width)


def hand_condition(keypoints: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """``c_p``: (B, 11, H, W) float in [0, 1] from crop keypoints (B, 42, 3) and the
    hand mask (B, 1, H, W) or (B, H, W), at the mask's resolution."""
    if mask.dim() == 3:
        mask = mask[:, None]
    heatmaps = finger_heatmaps(keypoints, mask.shape[-2], mask.shape[-1], sigma)
    return torch.cat([heatmaps, mask.float()], dim=1)


def drop_mask_channel(condition: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero the mask channel (the last) of each sample with probability ``p``, so the
    generator also works without a mask at inference. Returns a new tensor."""
    keep = (torch.rand(condition.shape[0], generator=generator, device="cpu") >= p).to(condition.device, condition.dtype)
    out = condition.clone()
    out[:, -1] *= keep.view(-1, 1, 1)
    return out
