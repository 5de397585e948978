"""Every method behind one name (handdiff.inference.registry)."""

from __future__ import annotations

import pytest

from handdiff.inference.registry import generators, make_generator


def test_every_method_is_registered():
    assert set(generators()) == {"handdiff", "oracle", "sd15", "controlnet-openpose", "t2i-adapter-openpose", "humansd", "handrefiner"}
    with pytest.raises(ValueError, match="unknown method 'dalle'"):
        make_generator("dalle")
