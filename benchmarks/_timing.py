"""The timing helper of the part-by-part benchmarks. Imports only jax and numpy, so that the
JaxMARL side (`jaxmarl_smax_components.py`, run in the anchor's venv without wqmix) uses it too."""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import numpy as np


def median_ms(call: Callable[[], Any], reps: int) -> tuple[float, float]:
    """(median, min) milliseconds of `call()` over `reps` calls, after 3 warm-up calls."""
    for _ in range(3):
        jax.block_until_ready(call())
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3, min(times) * 1e3
