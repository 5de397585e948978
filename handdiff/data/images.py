"""Reading images from any URI: decoding to RGB, probing sizes, encoding.

Errors carry a reason that names the problem ("image file not found", "cannot
decode image: ...") so that jobs record them instead of crashing.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from handdiff import storage


class ImageError(ValueError):
    """An image that cannot be used; ``str(err)`` is the reason for the errors table."""


def read_image_bytes(uri: str) -> bytes:
    try:
        return storage.read_bytes(uri)
    except FileNotFoundError:
        raise ImageError("image file not found") from None


def decode_image(data: bytes) -> np.ndarray:
    """Decode any PIL-readable image to RGB: (H, W, 3) uint8.

    Grayscale, palette and RGBA images are converted (alpha composited on black,
    as the pixels would show without transparency support).
    """
    if not data:
        raise ImageError("cannot decode image: empty file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # decode fully now: truncated and corrupt files fail here, not later
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (0, 0, 0, 255))
                im = Image.alpha_composite(background, im)
            rgb = np.asarray(im.convert("RGB"))
    except UnidentifiedImageError:
        raise ImageError("cannot decode image: not a recognised image format") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageError(f"cannot decode image: {' '.join(str(err).split())}") from None
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageError("cannot decode image: zero-size image")
    return rgb


def load_image(uri: str) -> np.ndarray:
    """Read and decode ``uri``: (H, W, 3) uint8 RGB."""
    return decode_image(read_image_bytes(uri))


def image_size(uri: str) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels."""
    fs, path = storage.filesystem(uri)
    try:
        with fs.open(path, "rb") as f, Image.open(f) as im:
            return im.size
    except FileNotFoundError:
        raise ImageError("image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageError(f"cannot read image header: {' '.join(str(err).split())}") from None


def encode_image(rgb: np.ndarray, fmt: str = "JPEG", quality: int = 92) -> bytes:
    """(H, W, 3) or (H, W) uint8 -> encoded bytes (JPEG or PNG)."""
    buf = io.BytesIO()
    kwargs = {"quality": quality} if fmt.upper() == "JPEG" else {}
    Image.fromarray(rgb).save(buf, format=fmt, **kwargs)
    return buf.getvalue()
