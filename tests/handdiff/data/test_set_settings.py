"""What a set was made with (handdiff.data.set_settings): written beside it, read back, and a set
without it refused, naming the file."""

from __future__ import annotations

import pytest

from handdiff.data.set_settings import read_set_settings, write_set_settings


def test_settings_round_trip_and_a_missing_file_or_key_is_named(tmp_path):
    write_set_settings(str(tmp_path / "set"), {"size": 512, "margin": 0.25})
    assert read_set_settings(str(tmp_path / "set"), ("size",)) == {"size": 512, "margin": 0.25}
    with pytest.raises(ValueError, match=r"set/settings.json does not record fill; rebuild the set"):
        read_set_settings(str(tmp_path / "set"), ("size", "fill"))
    with pytest.raises(FileNotFoundError, match=r"old/settings.json not found: the set was built before"):
        read_set_settings(str(tmp_path / "old"), ("size",))
