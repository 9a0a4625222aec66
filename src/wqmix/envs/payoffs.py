"""Payoff matrices of the matrix game, as plain tuples (no JAX): read by its config and by the env."""

from __future__ import annotations

PAPER_PAYOFF: tuple[tuple[float, ...], ...] = (
    (8.0, -12.0, -12.0),
    (-12.0, 0.0, 0.0),
    (-12.0, 0.0, 0.0),
)
"""Paper, Table 1a: the optimal joint action (0, 0) pays 8; a monotonic Q_tot cannot represent it."""
