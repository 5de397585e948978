"""Reading the session's sample data through a dataset's reader."""

from __future__ import annotations

from handdiff.assets.sample_data import sample_sources
from handdiff.data.readers import open_reader
from handdiff.data.records import split_rows


def read(sample_data: str, name: str, **options):
    """``(records, errors)`` of sample dataset ``name``, with reader ``options`` changed."""
    return split_rows(open_reader(**{**sample_sources(sample_data)[name], **options}))
