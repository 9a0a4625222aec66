"""The paper's non-monotonic matrix game: two agents, one step, a square payoff matrix."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from wqmix.envs.base import Environment, EnvSpec, TimeStep
from wqmix.envs.payoffs import PAPER_PAYOFF


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
