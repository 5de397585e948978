"""Typed configs: YAML files validated by pydantic models, with dotted overrides.

A job's config is a pydantic model (see ``pipelines/``); this module only knows
how to read one from YAML, apply ``a.b.c=value`` overrides and turn pydantic's
errors into one line per problem that names the key, the value and the source:

    pipelines/configs/demo.yaml: train.lrr = 0.1 (override): unknown key; known keys: lr, steps
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import fsspec
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class _Input:
    """Marks a config field whose value is data the job reads: it must exist before the job starts."""


InputPath = Annotated[str, _Input()]
"""A path or URI of input data (``str``); ``missing_inputs`` checks that it exists."""


def _is_input(annotation: Any, metadata: Sequence[Any] = ()) -> bool:
    if any(isinstance(m, _Input) for m in metadata):
        return True
    if get_origin(annotation) is Annotated:
        return any(isinstance(m, _Input) for m in annotation.__metadata__)
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_input(arg) for arg in get_args(annotation))
    return False


def input_paths(cfg: BaseModel, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(dotted key, value)`` of every set ``InputPath`` field of ``cfg``, nested sections,
    dicts and lists of sections included."""
    for name, field in type(cfg).model_fields.items():
        value, key = getattr(cfg, name), f"{prefix}{name}"
        if isinstance(value, str) and _is_input(field.annotation, field.metadata):
            yield key, value
        for child_key, child in _sections(value, key):
            yield from input_paths(child, f"{child_key}.")


def _sections(value: Any, key: str) -> Iterator[tuple[str, BaseModel]]:
    if isinstance(value, BaseModel):
        yield key, value
    elif isinstance(value, Mapping):
        yield from ((f"{key}.{k}", v) for k, v in value.items() if isinstance(v, BaseModel))
    elif isinstance(value, list | tuple):
        yield from ((f"{key}.{i}", v) for i, v in enumerate(value) if isinstance(v, BaseModel))


def missing_inputs(cfg: BaseModel, exists: Callable[[str], bool]) -> list[str]:
    """One line per ``InputPath`` of ``cfg`` that ``exists`` does not find: ``key: no such path: uri``."""
    return [f"{key}: no such path: {value}" for key, value in input_paths(cfg) if not exists(value)]


class ConfigError(ValueError):
    """A config that cannot be used; ``str(err)`` is ready to print, one line per problem."""


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.steps=20"`` -> ``("train.steps", 20)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: expected dotted.key=value")
    # YAML 1.1 reads "2e-5" as a string: pydantic's lax mode turns it into the float
    # a float field expects, so no special case is needed here.
    value = yaml.safe_load(raw) if raw.strip() else None
    return key, value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``key="a.b"``, creating sections as needed."""
    *parents, leaf = key.split(".")
    node = data
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {'.'.join(parents[: i + 1])} is a value, not a section")
        node = child
    node[leaf] = value


def read_yaml(uri: str) -> dict[str, Any]:
    """Read a YAML mapping from a local path or any fsspec URI."""
    try:
        with fsspec.open(uri, "r") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{uri}: config file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{uri}: not valid YAML: {' '.join(str(err).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{uri}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_config(model: type[M], path: str | None = None, overrides: Sequence[str] = ()) -> M:
    """Validate ``path`` (YAML, optional) plus ``overrides`` against ``model``.

    Raises:
        ConfigError: one line per problem, naming the key, the value and where it came from.
    """
    data = read_yaml(path) if path else {}
    overridden = set()
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(data, key, value)
        overridden.add(key)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, model, path or "<defaults>", overridden)) from None


def _describe(err: ValidationError, model: type[BaseModel], source: str, overridden: set[str]) -> str:
    lines = []
    for e in err.errors():
        parts, section = _follow(model, e["loc"])
        key = ".".join(parts)
        origin = " (override)" if key in overridden else ""
        if e["type"] == "extra_forbidden":
            known = sorted(section.model_fields) if section is not None else []
            what = "unknown key" + (f"; known keys: {', '.join(known)}" if known else "")
        elif e["type"] == "missing":
            lines.append(f"{source}: {key}: required key is missing")
            continue
        else:
            what = e["msg"]
        lines.append(f"{source}: {key} = {e.get('input')!r}{origin}: {what}")
    return "\n".join(lines)


def _follow(model: type[BaseModel], loc: Sequence[Any]) -> tuple[list[str], type[BaseModel] | None]:
    """The config keys of a pydantic error location (without the union tags and member names
    pydantic adds) and the section model holding its last key (None if it cannot be followed)."""
    parts: list[str] = []
    annotation: Any = model
    section: type[BaseModel] | None = model
    for part in loc:
        annotation = _unwrap(annotation)
        members = _union_members(annotation)
        if members is not None:  # pydantic names the member (its tag, or its type) before its keys
            chosen = next((m for m in members if _tag_matches(m, part)), None)
            if chosen is not None:
                annotation = chosen
                continue
        if isinstance(part, str) and "[" in part:  # e.g. "list[str]": a type name, not a key
            continue
        parts.append(str(part))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            section = annotation
            field = annotation.model_fields.get(str(part))
            annotation = field.annotation if field is not None else None
        elif get_origin(annotation) in (dict, Mapping) and get_args(annotation):
            section, annotation = None, get_args(annotation)[1]
        elif get_origin(annotation) in (list, tuple) and get_args(annotation):
            section, annotation = None, get_args(annotation)[0]
        else:
            section, annotation = None, None
    return parts, section


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _union_members(annotation: Any) -> list[Any] | None:
    if get_origin(annotation) in (Union, types.UnionType):
        return [_unwrap(a) for a in get_args(annotation) if a is not type(None)]
    return None


def _tag_matches(member: Any, part: Any) -> bool:
    """``part`` names this union member: its discriminator value or its type name."""
    if not (isinstance(member, type) and issubclass(member, BaseModel)):
        return part == getattr(member, "__name__", None)
    if part == member.__name__:
        return True
    return any(get_origin(field.annotation) is Literal and part in get_args(field.annotation) for field in member.model_fields.values())


def to_yaml(cfg: BaseModel) -> str:
    """The resolved config as YAML, in field order, for ``--print-config`` and logs."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
