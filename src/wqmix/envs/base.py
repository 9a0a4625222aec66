"""The environment protocol every wqmix environment follows.

The shape of JaxMARL's `MultiAgentEnv` (reset, step, available actions, global state), with
agents stacked on a leading axis instead of keyed by name, and with `terminated` and
`truncated` kept apart: a time-limit cut is not terminal, so its target still bootstraps.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from wqmix.errors import EnvCheckError


class EnvSpec(NamedTuple):
    """Static facts about an environment: these fix every array shape of a run."""

    num_agents: int
    obs_dim: int
    state_dim: int
    num_actions: int
    time_limit: int
    """Longest episode in steps; episodes are padded to it in the replay buffer."""
    obs_dtype: Any = np.float32
    """Smallest dtype that holds every observation value exactly (replay storage)."""
    state_dtype: Any = np.float32
    """Smallest dtype that holds every state value exactly (replay storage)."""


@struct.dataclass
class TimeStep:
    """What the agents and the learner see after a reset or a step."""

    obs: jax.Array  # (agents, obs_dim) float32
    state: jax.Array  # (state_dim,) float32: the mixer's input
    avail: jax.Array  # (agents, actions) bool: actions each agent may take now
    reward: jax.Array  # () float32: shared team reward of the step that led here (0 after reset)
    terminated: jax.Array  # () bool: the episode ended for real (no bootstrap)
    truncated: jax.Array  # () bool: the episode was cut by the time limit (bootstrap)
    won: jax.Array  # () bool: the episode ended in a win (SMAX battles); always false where
    # the env has no notion of winning
    alive: jax.Array | None = None  # (agents,) bool, or None when every agent always takes part.
    # An agent that has left the episode keeps its slot; its utility is left out of the loss.


class Environment(abc.ABC):
    """A pure-functional multi-agent environment; `reset` and `step` must be jittable."""

    spec: EnvSpec
    reports_wins: bool = False
    """True where `TimeStep.won` is meaningful (SMAX): runs then log win rates."""

    @abc.abstractmethod
    def reset(self, key: jax.Array) -> tuple[Any, TimeStep]:
        """Start an episode: (env state, first time step)."""

    @abc.abstractmethod
    def step(self, key: jax.Array, env_state: Any, actions: jax.Array) -> tuple[Any, TimeStep]:
        """Apply `actions` (agents,) int32: (next env state, next time step)."""


def check_env(env: Environment, num_steps: int = 8, seed: int = 0) -> None:
    """Run a few jitted steps with random available actions and raise `EnvCheckError` naming the
    first thing that disagrees with `env.spec`: shapes, dtypes, NaN/inf values, or an agent with
    no available action. Runs before any training compile, so a broken env fails fast."""
    spec = env.spec
    expected = {
        "obs": (spec.num_agents, spec.obs_dim),
        "state": (spec.state_dim,),
        "avail": (spec.num_agents, spec.num_actions),
        "reward": (),
        "terminated": (),
        "truncated": (),
        "won": (),
    }
    reset = jax.jit(env.reset)
    step = jax.jit(env.step)
    key = jax.random.key(seed)
    key, reset_key = jax.random.split(key)
    env_state, timestep = reset(reset_key)
    for t in range(num_steps + 1):
        where = "reset" if t == 0 else f"step {t}"
        for name, shape in expected.items():
            value = np.asarray(getattr(timestep, name))
            if value.shape != shape:
                raise EnvCheckError(f"{type(env).__name__} {where}: {name} has shape {value.shape}, "
                                    f"the spec says {shape}")
            if name in ("obs", "state", "reward") and not np.all(np.isfinite(value)):
                raise EnvCheckError(f"{type(env).__name__} {where}: {name} holds NaN or inf")
        avail = np.asarray(timestep.avail)
        if avail.dtype != np.bool_:
            raise EnvCheckError(f"{type(env).__name__} {where}: avail has dtype {avail.dtype}, expected bool")
        empty = np.flatnonzero(~avail.any(axis=-1))
        if empty.size:
            raise EnvCheckError(f"{type(env).__name__} {where}: agent {int(empty[0])} has no available "
                                "action; every agent needs at least one (a no-op when it is out of play)")
        if t == num_steps or bool(timestep.terminated) or bool(timestep.truncated):
            break
        key, action_key, step_key = jax.random.split(key, 3)
        logits = jnp.where(timestep.avail, 0.0, -jnp.inf)
        actions = jax.random.categorical(action_key, logits).astype(jnp.int32)
        env_state, timestep = step(step_key, env_state, actions)


class HostEnvironment(abc.ABC):
    """An environment that steps in Python on the host (PettingZoo through the adapter): acting
    and learning stay compiled, only `reset` and `step` run outside `jit`. Same `TimeStep`
    fields as `Environment`, as NumPy arrays; `alive` is always given."""

    spec: EnvSpec
    reports_wins: bool = False

    @abc.abstractmethod
    def reset(self, seed: int) -> TimeStep:
        """Start an episode from an integer seed."""

    @abc.abstractmethod
    def step(self, actions: np.ndarray) -> TimeStep:
        """Apply `actions` (agents,) int; agents that have left get their no-op."""
