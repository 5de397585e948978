"""The two trained stages' pipeline folders, as training saves them (tiny zoo weights), for the pyfuncs to load."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from handdiff.assets.tiny_zoo import model_locations
from handdiff.models.hand_generator import build_hand_generator
from handdiff.models.hand_pipeline import HandGenerationPipeline
from handdiff.models.loading import load_sd_pipeline
from tests.handdiff.models.test_body_pipeline import tiny_pipeline as tiny_body_pipeline

CROP = 32
"""The hand model's crop size (saved with it): the pyfunc's output side."""


@pytest.fixture(scope="package")
def saved(tiny_zoo, tmp_path_factory) -> SimpleNamespace:
    """``hand`` and ``body``: folders of a stage-1 pipeline (crop size ``CROP``) and a stage-2 pipeline."""
    zoo, root = model_locations(tiny_zoo), tmp_path_factory.mktemp("serving")
    sd = load_sd_pipeline(zoo["sd15"])
    hand = HandGenerationPipeline.from_parts(sd, build_hand_generator(sd.unet, crop_size=CROP, generator=torch.Generator().manual_seed(7)))
    hand.save_pretrained(root / "hand")
    tiny_body_pipeline(tiny_zoo).save_pretrained(root / "body")
    return SimpleNamespace(hand=str(root / "hand"), body=str(root / "body"))


def loaded(model, **artifacts):
    """``model`` after MLflow's ``load_context`` with these artifacts."""
    model.load_context(SimpleNamespace(artifacts=artifacts))
    return model
