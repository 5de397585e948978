from __future__ import annotations

import numpy as np
import pytest

from handdiff.data.images import ImageError, decode_image, encode_image, image_size, load_image


def test_round_trip_and_header_size(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    path.write_bytes(encode_image(rgb, "PNG"))
    assert np.array_equal(load_image(str(path)), rgb)
    assert image_size(str(path)) == (40, 30)


def test_grayscale_and_rgba_become_rgb():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = decode_image(encode_image(gray, "PNG"))
    assert out.shape == (3, 4, 3) and np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 2], gray)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[0, 0, 3] = 0  # transparent: shows as black
    rgba[1, 1, 3] = 255
    out = decode_image(encode_image(rgba, "PNG"))
    assert out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [0, 0, 0] and out[1, 1].tolist() == [200, 200, 200]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"definitely not an image", "not a recognised image format"),
        (encode_image(np.zeros((64, 64, 3), np.uint8), "PNG")[:60], "cannot decode image"),
    ],
)
def test_undecodable_bytes_raise_with_a_reason(data, reason):
    with pytest.raises(ImageError, match=reason):
        decode_image(data)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="image file not found"):
        load_image(str(tmp_path / "nope.jpg"))
    with pytest.raises(ImageError, match="image file not found"):
        image_size(str(tmp_path / "nope.jpg"))
