"""Typed config sections for the dataset readers: ``sources: [{dataset: hagrid, ...}]``.

Each is validated against its reader's options, so that a typo in a dataset path
key fails at start-up, naming the key, instead of deep inside a Ray task.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from handdiff.config import InputPath, StrictModel
from handdiff.data.reinterhand import RELEASE_TEST_CAPTURES


class HagridSource(StrictModel):
    dataset: Literal["hagrid"] = "hagrid"
    images: InputPath
    """Folder with one subfolder of images per gesture."""
    annotations: InputPath
    """v2: folder of split folders of ``<gesture>.json``; v1: folder of ``<gesture>.json``."""
    layout: Literal["v1", "v2"] = "v2"
    splits: list[str] | None = None
    gestures: list[str] | None = None


class InterHandSource(StrictModel):
    dataset: Literal["interhand26m"] = "interhand26m"
    root: InputPath
    """Folder holding ``annotations/`` and ``images/``."""
    splits: list[str] | None = None


class ReInterHandSource(StrictModel):
    dataset: Literal["reinterhand"] = "reinterhand"
    root: InputPath
    """Folder of capture folders."""
    splits: list[str] | None = None
    test_captures: list[str] = list(RELEASE_TEST_CAPTURES)
    envmap: str = "envmap_per_frame"


class LaionHumanSource(StrictModel):
    dataset: Literal["laion_human"] = "laion_human"
    root: InputPath
    mapping: str = "mapping_file_training.json"
    split: str = "train"
    min_person_score: float = Field(0.3, ge=0, le=1)
    """A pose-file detection counts as a person from this score up (detection score, else the
    mean keypoint score): HumanSD's files keep weak detections that are not people."""


Source = Annotated[HagridSource | InterHandSource | ReInterHandSource | LaionHumanSource, Field(discriminator="dataset")]
