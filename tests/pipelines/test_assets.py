from __future__ import annotations

import json

from pipelines import assets


def test_sample_data_command_writes_all_datasets_and_the_manifest(tmp_path, capsys):
    assert assets.main(["sample-data", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for name, info in manifest["datasets"].items():
        assert (tmp_path / info["root"]).is_dir()
        assert name in out
    assert f"{len(manifest['bad_entries'])} deliberate bad entries" in out


def test_tiny_zoo_command_builds_then_reuses(tmp_path, capsys):
    assert assets.main(["tiny-zoo", "--out", str(tmp_path / "zoo")]) == 0
    assert "built in" in capsys.readouterr().out
    assert assets.main(["tiny-zoo", "--out", str(tmp_path / "zoo")]) == 0
    assert "up to date, reused" in capsys.readouterr().out
