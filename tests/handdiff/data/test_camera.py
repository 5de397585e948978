"""Pinhole camera conventions (handdiff.data.camera)."""

from __future__ import annotations

import numpy as np

from handdiff.data.camera import look_at, project, world_to_camera


def test_pinhole_camera_conventions():
    R = look_at(np.array([0.0, 0.0, -1000.0]), np.zeros(3))
    cam = world_to_camera(np.array([[0.0, 0.0, 0.0], [100.0, 50.0, 0.0], [0, 0, -2000.0]]), R, -R @ [0, 0, -1000.0])
    uv, in_front = project(cam, (1000, 1000), (320, 240))
    np.testing.assert_allclose(uv[:2], [[320, 240], [420, 290]])  # x right, y down
    assert in_front.tolist() == [True, True, False]
