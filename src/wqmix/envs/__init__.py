"""Environments: the protocol, the registry and the built-in environments.

The names below are loaded on first use (PEP 562), so that importing a light submodule
(`wqmix.envs.configs`, `wqmix.envs.registry`) does not import JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "Environment": "wqmix.envs.base",
    "EnvSpec": "wqmix.envs.base",
    "HostEnvironment": "wqmix.envs.base",
    "TimeStep": "wqmix.envs.base",
    "check_env": "wqmix.envs.check",
    "MatrixGame": "wqmix.envs.matrix_game",
    "MatrixGameConfig": "wqmix.envs.configs",
    "PAPER_PAYOFF": "wqmix.envs.payoffs",
    "ENV_CONFIGS": "wqmix.envs.registry",
    "env_config_for": "wqmix.envs.registry",
}
"""Each public name and the module that defines it."""

__all__ = ["Environment", "EnvSpec", "HostEnvironment", "TimeStep", "check_env", "MatrixGame", "MatrixGameConfig",
           "PAPER_PAYOFF", "ENV_CONFIGS", "env_config_for"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wqmix.envs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
