"""What the dataset readers share: the reader shape, entry errors, JSON and box checks.

A reader works in two steps so that jobs can parallelise the second:

- ``entries()`` parses the dataset's index files and yields one small, JSON-able
  dict per image (or an error row when an index file itself is broken);
- ``record(entry)`` turns one entry into a canonical row (``handdiff.data.records``),
  touching at most the image header and per-frame keypoint files. A malformed
  entry becomes an error row with stage ``read``; it never raises.

Iterating a reader does both, in order.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from handdiff import storage
from handdiff.data.records import error_row, is_error


class EntryError(ValueError):
    """A malformed dataset entry; ``str(err)`` is the reason for the errors table."""


class DatasetNotFound(FileNotFoundError):
    """The configured dataset root holds none of the files its layout needs (a config error)."""


class Reader(ABC):
    """Base of the four dataset readers: subclasses set ``dataset`` and implement
    ``entries()`` and ``_record(entry)``; ``record()`` turns failures into error rows."""

    dataset: str

    @abstractmethod
    def entries(self) -> Iterator[dict[str, Any]]:
        """One JSON-able dict per image, with at least ``image_id``; or error rows."""

    @abstractmethod
    def _record(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The canonical row of one entry; raises EntryError for a malformed one."""

    def record(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        if is_error(entry):
            return dict(entry)
        try:
            return self._record(dict(entry))
        except EntryError as err:
            return error_row(entry["image_id"], self.dataset, "read", str(err))
        except (KeyError, TypeError, ValueError, IndexError) as err:
            detail = f"missing field {err}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
            return error_row(entry["image_id"], self.dataset, "read", f"malformed entry: {detail}")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for entry in self.entries():
            yield self.record(entry)


def load_json(uri: str) -> Any:
    """Parse a JSON file; a missing or malformed file raises EntryError with the reason."""
    try:
        text = storage.read_text(uri)
    except FileNotFoundError:
        raise EntryError(f"file not found: {uri}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise EntryError(f"malformed JSON in {uri}: {err.msg} at line {err.lineno} column {err.colno}") from None


def require(entry: Mapping[str, Any], *fields: str) -> list[Any]:
    """The values of ``fields``, or EntryError naming the first missing one."""
    for field in fields:
        if field not in entry:
            raise EntryError(f"missing field {field!r}")
    return [entry[f] for f in fields]


def finite_array(values: Any, shape: Sequence[int | None], what: str) -> np.ndarray:
    """``values`` as a float64 array of ``shape`` (None: any size) with only finite numbers."""
    try:
        arr = np.asarray(values, np.float64)
    except (TypeError, ValueError):
        raise EntryError(f"{what}: not an array of numbers") from None
    if arr.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, arr.shape)):
        raise EntryError(f"{what}: shape {arr.shape}, expected {tuple('N' if s is None else s for s in shape)}")
    if not np.isfinite(arr).all():
        raise EntryError(f"non-finite {what}")
    return arr


def check_box(box: Any, what: str = "box") -> list[float]:
    """A valid ``[x, y, w, h]`` as floats; EntryError for a wrong length, NaN or zero size."""
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
        raise EntryError(f"{what} {box!r}: expected [x, y, w, h]")
    if not all(math.isfinite(v) for v in box):
        raise EntryError(f"{what} {box!r}: non-finite value")
    if box[2] <= 0 or box[3] <= 0:
        raise EntryError(f"{what} {box!r}: zero-size box")
    return [float(v) for v in box]


def visible_in_image(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) bool: pixel points (N, 2) inside a ``width`` x ``height`` image."""
    return (points[:, 0] >= 0) & (points[:, 1] >= 0) & (points[:, 0] < width) & (points[:, 1] < height)


def file_error(dataset: str, image_id: str, err: EntryError) -> dict[str, Any]:
    """An error row for an index file that cannot be read (it stands for every image it lists)."""
    return error_row(image_id, dataset, "read", str(err))
