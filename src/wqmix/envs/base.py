"""The environment protocol every wqmix environment follows.

The shape of JaxMARL's `MultiAgentEnv` (reset, step, available actions, global state), with
agents stacked on a leading axis instead of keyed by name, and with `terminated` and
`truncated` kept apart: a time-limit cut is not terminal, so its target still bootstraps.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import struct



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
    state_unit_dim: int | None = None
    """Where the state starts with one block of features per agent's own unit, agent i's at
    [i * d, (i + 1) * d): d (SMAC's per-ally state features, what Qatten's official `unit_dim`
    reads). None where the state has no such layout."""


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
    padded: tuple[str, ...] = ()
    """What the adapter padded so that agents of different shapes share one network, one line
    each (`wqmix.envs.padding.AgentShapes.padded`); `check-env` prints them."""

    @abc.abstractmethod
    def reset(self, key: jax.Array) -> tuple[Any, TimeStep]:
        """Start an episode: (env state, first time step)."""

    @abc.abstractmethod
    def step(self, key: jax.Array, env_state: Any, actions: jax.Array) -> tuple[Any, TimeStep]:
        """Apply `actions` (agents,) int32: (next env state, next time step)."""


class HostEnvironment(abc.ABC):
    """An environment that steps in Python on the host (PettingZoo through the adapter): acting
    and learning stay compiled, only `reset` and `step` run outside `jit`. Same `TimeStep`
    fields as `Environment`, as NumPy arrays; `alive` is always given."""

    spec: EnvSpec
    reports_wins: bool = False
    padded: tuple[str, ...] = ()
    """As `Environment.padded`."""

    @abc.abstractmethod
    def reset(self, seed: int) -> TimeStep:
        """Start an episode from an integer seed."""

    @abc.abstractmethod
    def step(self, actions: np.ndarray) -> TimeStep:
        """Apply `actions` (agents,) int; agents that have left get their no-op."""
