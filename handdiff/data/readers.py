"""The dataset readers by name, for configs: ``open_reader("hagrid", images=..., annotations=...)``."""

from __future__ import annotations

from typing import Any

from handdiff.data.hagrid import HagridReader
from handdiff.data.images import ImageError, load_image
from handdiff.data.interhand import InterHandReader
from handdiff.data.laion_human import LaionHumanReader
from handdiff.data.reading import Reader
from handdiff.data.records import error_row, is_error
from handdiff.data.reinterhand import ReInterHandReader

READERS: dict[str, type[Reader]] = {
    HagridReader.dataset: HagridReader,
    InterHandReader.dataset: InterHandReader,
    ReInterHandReader.dataset: ReInterHandReader,
    LaionHumanReader.dataset: LaionHumanReader,
}


def open_reader(dataset: str, **options: Any) -> Reader:
    """The reader of ``dataset`` (one of ``READERS``) built with its keyword options."""
    try:
        cls = READERS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(READERS)}") from None
    return cls(**options)


def scan_dataset(reader: Reader, decode: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read every record of ``reader`` and, with ``decode``, decode its image.

    Returns ``(records, errors)``: a record whose image does not decode becomes an
    error with stage ``decode``; rows in = records + errors.
    """
    records, errors = [], []
    for row in reader:
        if is_error(row):
            errors.append(row)
            continue
        if decode:
            try:
                load_image(row["image_uri"])
            except ImageError as err:
                errors.append(error_row(row["image_id"], row["dataset"], "decode", str(err)))
                continue
        records.append(row)
    return records, errors
