"""Model fingerprints: what a model is, not where it is."""

from __future__ import annotations

import shutil

import pytest

from handdiff import storage
from handdiff.models.fingerprint import fingerprint


def test_a_local_model_is_known_by_its_contents(tmp_path):
    model = tmp_path / "model"
    (model / "unet").mkdir(parents=True)
    (model / "unet" / "weights.bin").write_bytes(b"\x00" * 64)
    (model / "config.json").write_text("{}")
    first = fingerprint(str(model))
    shutil.copytree(model, tmp_path / "elsewhere")
    assert fingerprint(str(tmp_path / "elsewhere")) == first  # the same contents anywhere
    (model / "unet" / "weights.bin").write_bytes(b"\x01" + b"\x00" * 63)  # retrained in place: same size, new bytes
    assert fingerprint(str(model)) != first
    (model / "unet" / "weights.bin").write_bytes(b"\x00" * 64)
    assert fingerprint(str(model)) == first
    (model / "extra.txt").write_text("x")
    assert fingerprint(str(model)) != first
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fingerprint(str(tmp_path / "missing"))


@pytest.mark.services
def test_an_s3_model_is_known_by_its_objects_etags(s3_prefix, tmp_path):
    storage.write_bytes(f"{s3_prefix}/model/unet/weights.bin", b"\x00" * 64)
    storage.write_text(f"{s3_prefix}/model/config.json", "{}")
    first = fingerprint(f"{s3_prefix}/model")
    assert fingerprint(f"{s3_prefix}/model/") == first
    storage.write_bytes(f"{s3_prefix}/model/unet/weights.bin", b"\x01" + b"\x00" * 63)
    assert fingerprint(f"{s3_prefix}/model") != first


def test_a_hub_id_offline_is_its_id_and_says_so(caplog, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level("WARNING"):
        assert fingerprint("someone/some-model") == fingerprint("someone/some-model") != fingerprint("someone/other-model")
    assert "blind to a new revision" in caplog.text
