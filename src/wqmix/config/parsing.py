"""Configs from JSON dictionaries (`from_dict`, a run's config.json), from dotted fields with JSON
values (`with_fields`, a sweep spec's) and from `--section.field value` command-line overrides
(`apply_override`), configs as JSON (`to_dict`), and what two stored configs differ in
(`config_difference`)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Union

from wqmix.config.algorithms import AlgoConfig, QattenConfig, QplexConfig, QtranConfig
from wqmix.config.presets import with_algo, with_env
from wqmix.config.sections import Config
from wqmix.config.typecheck import _check_type, field_types, _join, _type_name
from wqmix.config.validation import validate
from wqmix.errors import ConfigError

COMPUTE_ONLY_FIELDS = ("train.packed_rows", "train.env_workers")
"""Config fields that change how the computation is laid out, not what is learned (the same loss
up to float rounding): two runs that differ only in these are the same experiment, and a stored
config from before such a field existed matches any value of it (`config_difference`)."""


ADDED_SECTIONS: dict[str, Any] = {"algo.qplex": dataclasses.asdict(QplexConfig()),
                                  "algo.qtran": dataclasses.asdict(QtranConfig()),
                                  "algo.qatten": dataclasses.asdict(QattenConfig()),
                                  "algo.central_mixer": "ff",
                                  "train.collector": "episodes", "train.stream_window": 128}
"""Config sections (and fields) added after runs were stored, with the values that learn what those runs
learned: a stored config without such a section matches a current one that has it at these
values (`config_difference`)."""


def config_difference(stored: Any, current: Any, path: str = "") -> str | None:
    """The dotted path where a stored run's config (JSON, as in config.json) first differs from
    `current` in what is learned; None when they are the same experiment. `COMPUTE_ONLY_FIELDS`
    are not compared; a section of `ADDED_SECTIONS` that the stored config lacks matches its
    values there."""
    if path in COMPUTE_ONLY_FIELDS:
        return None
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(set(stored) | set(current)):
            where = _join(path, key)
            if where in COMPUTE_ONLY_FIELDS:
                continue
            if key not in stored and where in ADDED_SECTIONS and current[key] == ADDED_SECTIONS[where]:
                continue
            if key not in stored or key not in current:
                return where
            found = config_difference(stored[key], current[key], where)
            if found:
                return found
        return None
    return None if stored == current else (path or "(the whole value)")


def to_dict(config: Config) -> dict[str, Any]:
    """The full resolved config as plain JSON types (the env section carries its `name`)."""
    out = dataclasses.asdict(config)
    out["env"] = {"name": config.env.name, **out["env"]}
    out["algo"] = {"name": config.algo.name, **out["algo"]}
    return out


def _section_from_dict(cls: type, data: Any, path: str, base: Any = None) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(path, data, "must be a JSON object")
    base = base if base is not None else cls()
    valid = field_types(cls)
    values = {}
    for key, value in data.items():
        if key not in valid:
            raise ConfigError(_join(path, key), value, "unknown key; valid keys: " + ", ".join(valid))
        current = getattr(base, key)
        if dataclasses.is_dataclass(current):
            values[key] = _section_from_dict(type(current), value, _join(path, key), current)
        else:
            values[key] = _check_type(value, valid[key], _join(path, key))
    return dataclasses.replace(base, **values)


def from_dict(data: dict[str, Any], base: Config | None = None) -> Config:
    """A validated `Config` from a JSON-like dict, such as a run's `config.json`. Keys not given
    keep the value of `base` (default `Config()`). `env.name` and `algo.name` select a registered
    environment and algorithm before their other keys apply."""
    if not isinstance(data, dict):
        raise ConfigError("config", data, "must be a JSON object")
    config = base if base is not None else Config()
    data = dict(data)
    env = data.pop("env", None)
    algo = data.pop("algo", None)
    if env is not None:
        if not isinstance(env, dict):
            raise ConfigError("env", env, "must be a JSON object")
        env = dict(env)
        name = env.pop("name", config.env.name)
        if name != config.env.name:
            config = with_env(config, name)
        config = dataclasses.replace(config, env=_section_from_dict(type(config.env), env, "env", config.env))
    if algo is not None:
        if not isinstance(algo, dict):
            raise ConfigError("algo", algo, "must be a JSON object")
        algo = dict(algo)
        name = algo.pop("name", None)
        if name is not None and name != "custom":
            config = with_algo(config, name)
        config = dataclasses.replace(config, algo=_section_from_dict(AlgoConfig, algo, "algo", config.algo))
    config = _section_from_dict(Config, data, "", config)
    return validate(config)


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = nested
        *sections, leaf = dotted.split(".")
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise ConfigError(dotted, value, "is inside a field that is set to a value")
        node[leaf] = value
    return nested


def with_fields(base: Config, flat: dict[str, Any], where: str) -> Config:
    """`base` with the dotted fields set and the whole config validated; a ConfigError names the
    field as `where.FIELD`."""
    try:
        return from_dict(_nested(flat), base=base)
    except ConfigError as e:
        raise ConfigError(f"{where}.{e.path}" if where else e.path, e.value, e.valid) from None


def _parse_text(text: str, annotation: Any, path: str) -> Any:
    """Turn a command-line string into a value of the field's type (JSON for lists)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _parse_text(text, option, path)
            except ConfigError:
                pass
        raise ConfigError(path, text, f"must be {_type_name(annotation)}")
    if annotation is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(path, text, "must be true or false")
    if annotation is int:
        try:
            number = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ConfigError(path, text, "must be an integer") from None
        if isinstance(number, float) and not number.is_integer():
            raise ConfigError(path, text, "must be an integer")
        return int(number)
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(path, text, "must be a number") from None
    if annotation is type(None):
        if text.strip().lower() in ("none", "null"):
            return None
        raise ConfigError(path, text, "must be null")
    if origin is tuple:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(path, text, "must be a JSON list, e.g. [[8, -12], [-12, 0]]") from None
    return text  # str and Literal: checked by _check_type


def apply_override(config: Config, dotted: str, text: str) -> Config:
    """`config` with the field at `dotted` (e.g. "algo.alpha"; dashes may stand for
    underscores) set from the command-line string `text`."""
    parts = dotted.replace("-", "_").split(".")
    sections: list[Any] = [config]
    for depth, part in enumerate(parts):
        node = sections[-1]
        path = ".".join(parts[: depth + 1])
        valid = field_types(type(node))
        if part not in valid:
            prefix = ".".join(parts[:depth])
            names = [f"{prefix}.{n}" if prefix else n for n in valid]
            raise ConfigError(path, text, "unknown key; valid keys: " + ", ".join(names))
        if depth == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(node, part)):
                raise ConfigError(path, text, "is a section; set one of its fields, e.g. "
                                  f"{path}.{dataclasses.fields(getattr(node, part))[0].name}")
            value = _check_type(_parse_text(text, valid[part], path), valid[part], path)
            new = dataclasses.replace(node, **{part: value})
            for parent, name in zip(reversed(sections[:-1]), reversed(parts[:depth])):
                new = dataclasses.replace(parent, **{name: new})
            return new
        child = getattr(node, part)
        if not dataclasses.is_dataclass(child):
            raise ConfigError(path, text, f"is a value, not a section; set it with --{path}")
        sections.append(child)
    raise AssertionError("unreachable")
