"""Train OW-QMIX on your own JAX environment, compiled end to end.

Run: python examples/jax_custom_env.py   (a few minutes on 2 CPU cores)

`MeetingEnv` is the meeting game of `pettingzoo_custom_env.py` written in wqmix's `Environment`
protocol: pure `reset(key)` and `step(key, env_state, actions)` on arrays, so that acting, the env
and learning compile into one program. Two agents on a line of 5 cells must meet; each step costs
-0.1, meeting pays +1 and ends the episode; stepping off the line is unavailable.

The same env from the command line (with `examples` on the path):

    PYTHONPATH=examples wqmix check-env jax --env.factory jax_custom_env:MeetingEnv
    PYTHONPATH=examples wqmix train --env jax --env.factory jax_custom_env:MeetingEnv

`--env jax` also takes an env written to JaxMARL's `MultiAgentEnv` API (per-agent dicts; see
`wqmix.envs.signalling`, the default factory), told apart by what the object has.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from wqmix import config as cfg
from wqmix.driver import train_run
from wqmix.envs.base import Environment, EnvSpec, TimeStep

LEFT, STAY, RIGHT = 0, 1, 2


class MeetingEnv(Environment):
    def __init__(self, length: int = 5, max_steps: int = 10):
        self.length = length
        # obs: each agent sees both positions (one-hot, 2 x length); state: the same plus the step
        self.spec = EnvSpec(num_agents=2, obs_dim=2 * length, state_dim=2 * length, num_actions=3,
                            time_limit=max_steps, obs_dtype=np.uint8, state_dtype=np.uint8)

    def _timestep(self, positions: jax.Array, reward: jax.Array, terminated: jax.Array,
                  truncated: jax.Array) -> TimeStep:
        grid = jax.nn.one_hot(positions, self.length).reshape(-1)  # (2 * length,)
        avail = jnp.stack([positions > 0, jnp.ones((2,), bool), positions < self.length - 1], axis=1)  # (2, 3)
        return TimeStep(obs=jnp.stack([grid, grid]), state=grid, avail=avail, reward=jnp.asarray(reward, jnp.float32),
                        terminated=terminated, truncated=truncated, won=jnp.asarray(False))

    def reset(self, key: jax.Array):
        left_key, right_key = jax.random.split(key)
        positions = jnp.stack([jax.random.randint(left_key, (), 0, 2),
                               jax.random.randint(right_key, (), self.length - 2, self.length)])
        env_state = (positions, jnp.zeros((), jnp.int32))  # (positions (2,), steps taken)
        return env_state, self._timestep(positions, 0.0, jnp.asarray(False), jnp.asarray(False))

    def step(self, key: jax.Array, env_state, actions: jax.Array):
        del key  # deterministic
        positions, steps = env_state
        positions = jnp.clip(positions + actions - 1, 0, self.length - 1)
        steps = steps + 1
        met = positions[0] == positions[1]
        truncated = ~met & (steps >= self.spec.time_limit)  # a time-limit cut bootstraps
        return (positions, steps), self._timestep(positions, jnp.where(met, 1.0, -0.1), met, truncated)


def main() -> None:
    config = cfg.with_algo(cfg.Config(), "ow-qmix")
    config = dataclasses.replace(
        config,
        train=dataclasses.replace(config.train, total_env_steps=5000, num_envs=4, batch_size=16),
        exploration=cfg.ExplorationConfig(epsilon_start=1.0, epsilon_finish=0.05, epsilon_anneal_steps=2000),
    )
    summary = train_run(config, "runs/meeting-jax-ow-qmix", make_env=MeetingEnv)
    print("greedy test return:", summary["per_seed"][0]["greedy_return"])


if __name__ == "__main__":
    main()
