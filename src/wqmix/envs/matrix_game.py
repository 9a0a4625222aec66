"""The paper's non-monotonic matrix game: two agents, one step, a square payoff matrix."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from wqmix.envs.base import Environment, EnvSpec, TimeStep
from wqmix.errors import ConfigError

PAPER_PAYOFF: tuple[tuple[float, ...], ...] = (
    (8.0, -12.0, -12.0),
    (-12.0, 0.0, 0.0),
    (-12.0, 0.0, 0.0),
)
"""Paper, Table 1a: the optimal joint action (0, 0) pays 8; a monotonic Q_tot cannot represent it."""


@dataclass(frozen=True)
class MatrixGameConfig:
    """Settings of the matrix game (`--env matrix-game`)."""

    name: ClassVar[str] = "matrix-game"
    payoff: tuple[tuple[float, ...], ...] = PAPER_PAYOFF
    """Square payoff matrix: agent 0 picks the row, agent 1 the column. Default: paper Table 1a."""
    state_dim: int = 5
    """Length of the constant all-ones state, which is also each agent's observation.
    Default: official (`matrix_game_simple.py`: `np.ones(5)`)."""

    def validate(self, path: str) -> None:
        n = len(self.payoff)
        for i, row in enumerate(self.payoff):
            if len(row) != n:
                raise ConfigError(f"{path}.payoff", self.payoff,
                                  f"must be square: row {i} has {len(row)} entries, there are {n} rows")
            if not all(math.isfinite(v) for v in row):
                raise ConfigError(f"{path}.payoff", self.payoff, "entries must be finite numbers")
        if n < 2:
            raise ConfigError(f"{path}.payoff", self.payoff, "must be a square matrix of at least 2x2")
        if self.state_dim <= 0:
            raise ConfigError(f"{path}.state_dim", self.state_dim, "must be > 0")

    def make(self) -> "MatrixGame":
        return MatrixGame(self.payoff, self.state_dim)


class MatrixGame(Environment):
    """Two agents each pick one of n actions once; both receive payoff[a0, a1]; the episode
    terminates. Observation and state are the constant vector of ones (official code)."""

    def __init__(self, payoff=PAPER_PAYOFF, state_dim: int = 5):
        # jnp, not np: the payoff may be traced (the matrix-games suite vmaps over games).
        self.payoff = jnp.asarray(payoff, dtype=jnp.float32)
        n = int(self.payoff.shape[0])
        self.spec = EnvSpec(num_agents=2, obs_dim=state_dim, state_dim=state_dim, num_actions=n,
                            time_limit=1, obs_dtype=np.uint8, state_dtype=np.uint8)

    def _timestep(self, reward: jax.Array, done: bool) -> TimeStep:
        spec = self.spec
        state = jnp.ones((spec.state_dim,), jnp.float32)
        return TimeStep(
            obs=jnp.broadcast_to(state, (spec.num_agents, spec.obs_dim)),
            state=state,
            avail=jnp.ones((spec.num_agents, spec.num_actions), bool),
            reward=reward,
            terminated=jnp.asarray(done),
            truncated=jnp.asarray(False),
            won=jnp.asarray(False),
        )

    def reset(self, key: jax.Array) -> tuple[jax.Array, TimeStep]:
        del key  # deterministic
        return jnp.zeros((), jnp.int32), self._timestep(jnp.zeros((), jnp.float32), False)

    def step(self, key: jax.Array, env_state: jax.Array, actions: jax.Array) -> tuple[jax.Array, TimeStep]:
        del key
        reward = self.payoff[actions[0], actions[1]]
        return env_state + 1, self._timestep(reward, True)
