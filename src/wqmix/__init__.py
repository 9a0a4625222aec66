"""wqmix: Weighted QMIX (OW-QMIX, CW-QMIX) with QMIX, VDN and IQL baselines, compiled end to end
in JAX.

`import wqmix` is light (it does not import JAX); `wqmix.check_env(env)` checks an environment
against the wqmix protocol (see `wqmix.envs.check`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "check_env"]


def __getattr__(name: str) -> Any:
    if name == "check_env":
        from wqmix.envs.check import check_env  # imported here: imports JAX: only on first use

        globals()["check_env"] = check_env
        return check_env
    raise AttributeError(f"module 'wqmix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "check_env"})
