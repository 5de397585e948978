"""The readers' typed config sections (pipelines.sources): a typo fails at start-up naming the key."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from pipelines.sources import LaionHumanSource, Source


def test_each_dataset_gets_its_own_section_and_a_typo_is_named():
    source = TypeAdapter(Source).validate_python({"dataset": "laion_human", "root": "/data/laion"})
    assert isinstance(source, LaionHumanSource) and source.min_person_score == 0.3
    with pytest.raises(ValidationError, match="imagse"):
        TypeAdapter(Source).validate_python({"dataset": "hagrid", "imagse": "/x", "annotations": "/y"})
    with pytest.raises(ValidationError, match="dataset"):
        TypeAdapter(Source).validate_python({"dataset": "coco", "root": "/x"})
