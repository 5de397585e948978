"""The two-stage inference settings are validated where they are defined (the library), so a
config and a pyfunc's params get the same refusals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from handdiff.inference.settings import TwoStageSettings


def test_defaults_are_the_papers():
    s = TwoStageSettings()
    assert (s.hand_steps, s.body_steps, s.strategy, s.unmasked_last_steps, s.handoff) == (50, 50, "sme", 2, "pixel")


@pytest.mark.parametrize(
    ("field", "value"),
    [("mask_threshold", 1.0), ("strategy", "blur"), ("body_steps", 2), ("sme_kernel", 0), ("handoff", "both"), ("size", 512)],
)
def test_a_bad_or_unknown_setting_is_refused_naming_it(field, value):
    with pytest.raises(ValidationError, match=field):
        TwoStageSettings(**{field: value})
