"""What the set jobs share (pipelines.set_jobs), without Ray: sources draw training splits only
unless told, and the console's selection lines."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipelines.set_jobs import BuiltSet, SetSource, print_selection


def test_a_source_draws_the_train_split_unless_told_and_never_nothing():
    assert SetSource(path="annotated/hagrid").splits == ["train"]  # training never sees test images by default
    assert SetSource(path="annotated/hagrid", splits=["train", "val"], count=10).count == 10
    with pytest.raises(ValidationError, match="splits"):
        SetSource(path="annotated/hagrid", splits=[])
    with pytest.raises(ValidationError, match="count"):
        SetSource(path="annotated/hagrid", count=0)
    with pytest.raises(ValidationError, match="stratify_by"):
        SetSource(path="annotated/hagrid", stratify_by="split")


def test_the_selection_lines_say_what_was_drawn_from_what_and_the_rows_balance(capsys):
    built = BuiltSet(
        rows_in=12,
        counts={"records": 10, "errors": 2},
        report={"hagrid": {"selected": 12, "available": 40, "splits": ["train", "val"], "other_splits": 8}},
        timing={"images_per_second": 3.0, "seconds": 4.0, "startup_seconds": 2.0, "steady_images_per_second": 6.0},
    )
    print_selection(built)
    first, second = capsys.readouterr().out.splitlines()
    assert first.split() == ["hagrid", "12", "of", "40", "images", "of", "train/val", "(8", "of", "other", "splits", "left", "out)"]
    assert second.startswith("  rows 12 = records 10 + errors 2; 3.00 images/s in 4 s") and "then 6.00 images/s" in second
