"""Pinhole cameras of the multi-view hand datasets."""

from __future__ import annotations

import numpy as np


def world_to_camera(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``cam = R @ X + t`` for (N, 3) world points; returns (N, 3) camera coordinates.

    InterHand2.6M gives the camera position instead: ``t = -R @ campos``, i.e.
    ``cam = R @ (X - campos)``.
    """
    return points @ np.asarray(rotation, np.float64).T + np.asarray(translation, np.float64).reshape(1, 3)


def project(cam_points: np.ndarray, focal: np.ndarray, principal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection: ``u = x / z * fx + cx``, ``v = y / z * fy + cy``.

    Args:
        cam_points: (N, 3) camera coordinates (any length unit).
        focal: (fx, fy) in pixels. principal: (cx, cy) in pixels.
    Returns:
        (N, 2) pixel coordinates and an (N,) mask of points in front of the camera.
    """
    z = cam_points[:, 2]
    in_front = z > 1e-6
    safe_z = np.where(in_front, z, 1.0)
    uv = cam_points[:, :2] / safe_z[:, None] * np.asarray(focal, np.float64) + np.asarray(principal, np.float64)
    return uv, in_front


def look_at(camera_position: np.ndarray, target: np.ndarray, up: tuple[float, float, float] = (0.0, -1.0, 0.0)) -> np.ndarray:
    """World-to-camera rotation of a camera at ``camera_position`` looking at ``target``.

    Camera axes follow the datasets' convention: x right, y down, z forward.
    """
    forward = np.asarray(target, np.float64) - np.asarray(camera_position, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, np.float64))
    if np.linalg.norm(right) < 1e-8:  # looking along `up`
        right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])
