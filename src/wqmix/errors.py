"""Errors a user can act on. Each message is one line naming the field, the value and what is valid."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot be used."""

    def __init__(self, path: str, value: Any, valid: str):
        self.path, self.value, self.valid = path, value, valid
        super().__init__(f"{path} = {value!r} is invalid: {valid}")


class EnvCheckError(ValueError):
    """An environment that breaks the protocol (shapes, masks, values), found before compiling."""
