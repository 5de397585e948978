from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field

from handdiff.config import ConfigError, StrictModel, flatten, load_config, parse_override, to_yaml


class Train(StrictModel):
    lr: float = 1e-5
    steps: int = 10
    mixed_precision: Literal["no", "bf16"] = "no"


class Job(StrictModel):
    name: str
    train: Train = Field(default_factory=Train)
    tags: list[str] = []


@pytest.fixture
def yaml_file(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("name: first\ntrain:\n  lr: 2.0e-5\n  steps: 20\n")
    return path


def test_file_and_overrides_are_merged(yaml_file):
    cfg = load_config(Job, str(yaml_file), ["train.steps=5", "train.lr=3e-4", "tags=[a, b]"])
    assert cfg.name == "first"
    assert cfg.train.steps == 5
    assert cfg.train.lr == pytest.approx(3e-4)  # YAML 1.1 reads 3e-4 as a string; it must still be a float
    assert isinstance(cfg.train.lr, float)
    assert cfg.tags == ["a", "b"]
    assert cfg.train.mixed_precision == "no"


def test_unknown_override_key_names_key_value_file_and_known_keys(yaml_file):
    with pytest.raises(ConfigError) as err:
        load_config(Job, str(yaml_file), ["train.lrr=0.1"])
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert str(yaml_file) in message
    assert "train.lrr = 0.1 (override)" in message
    assert "unknown key" in message and "lr, mixed_precision, steps" in message


def test_wrong_type_in_file_names_the_key_and_value(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntrain:\n  steps: many\n")
    with pytest.raises(ConfigError) as err:
        load_config(Job, str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: train.steps = 'many':")
    assert "(override)" not in message
    assert "integer" in message


def test_literal_choice_and_missing_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  mixed_precision: fp8\n")
    with pytest.raises(ConfigError) as err:
        load_config(Job, str(path))
    lines = str(err.value).splitlines()
    assert any("name: required key is missing" in line for line in lines)
    assert any("train.mixed_precision = 'fp8'" in line and "'bf16'" in line for line in lines)


def test_override_into_a_value_is_an_error(yaml_file):
    with pytest.raises(ConfigError, match="name is a value, not a section"):
        load_config(Job, str(yaml_file), ["name.first=1"])


@pytest.mark.parametrize("text", ["noequals", "=3", "a..b=1"])
def test_malformed_override(text):
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        parse_override(text)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Job, str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Job, str(bad))
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(Job, str(listing))


def test_to_yaml_round_trips(yaml_file, tmp_path):
    cfg = load_config(Job, str(yaml_file), ["train.steps=7"])
    again = tmp_path / "again.yaml"
    again.write_text(to_yaml(cfg))
    assert load_config(Job, str(again)) == cfg


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1, 2], "e": {}}
