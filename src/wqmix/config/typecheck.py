"""The type checker of config fields: a value against a field's annotation (`_check_type`), the
annotations of a section's fields (`field_types`) and their names in messages (`_type_name`)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, Union

from wqmix.errors import ConfigError


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is tuple:
        return "a list"
    if annotation is type(None):
        return "null"
    return f"a {getattr(annotation, '__name__', str(annotation))}"


def _check_type(value: Any, annotation: Any, path: str) -> Any:
    """Return `value` as `annotation` (ints become floats, lists become tuples), or raise."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        if value in typing.get_args(annotation) and type(value) is not bool:
            return value
        raise ConfigError(path, value, f"must be {_type_name(annotation)}")
    if origin in (Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, path)
            except ConfigError:
                pass
        raise ConfigError(path, value, f"must be {_type_name(annotation)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, value, f"must be {_type_name(annotation)}")
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_type(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(path, value, f"must have {len(args)} entries")
        return tuple(_check_type(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, value, "must be true or false")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(path, value, "must be an integer")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(path, value, "must be a finite number")
            return float(value)
        raise ConfigError(path, value, "must be a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, value, "must be a string")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(path, value, "must be null")
    raise TypeError(f"unsupported annotation {annotation!r} at {path}")


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}



def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
