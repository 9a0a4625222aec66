"""Episode replay buffer as fixed-shape JAX arrays.

Episodes are padded to the env's time limit T. Observations, states and available actions hold
T + 1 entries (the last is the state after the final step, used for the bootstrap target), so
there is no duplicated next-observation array. Each field is stored in the smallest dtype that
holds its values exactly; `sample` gives them back as float32 / int32 / bool.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from wqmix.envs.base import EnvSpec


@struct.dataclass
class Episodes:
    """A batch of padded episodes. Leading axis B (episodes); time next."""

    obs: jax.Array  # (B, T+1, agents, obs_dim)
    state: jax.Array  # (B, T+1, state_dim)
    avail: jax.Array  # (B, T+1, agents, actions) bool
    actions: jax.Array  # (B, T, agents) int
    reward: jax.Array  # (B, T) float32
    terminated: jax.Array  # (B, T) bool
    filled: jax.Array  # (B, T) bool: the step belongs to the episode (not padding)
    alive: jax.Array  # (B, T+1, agents) bool: the agent takes part (PettingZoo agents may leave)


@struct.dataclass
class ReplayBuffer:
    """Circular store of `capacity` episodes."""

    data: Episodes  # every field with leading axis `capacity`
    insert_pos: jax.Array  # () int32: where the next episode goes
    size: jax.Array  # () int32: episodes stored, at most capacity

    @property
    def capacity(self) -> int:
        return self.data.reward.shape[0]


def action_dtype(num_actions: int) -> np.dtype:
    """Smallest unsigned integer dtype that holds every action index."""
    return np.dtype(np.uint8 if num_actions <= 256 else np.uint16 if num_actions <= 65536 else np.int32)


def init_buffer(spec: EnvSpec, capacity: int) -> ReplayBuffer:
    """An empty buffer for episodes of `spec`."""
    T, n = spec.time_limit, spec.num_agents
    data = Episodes(
        obs=jnp.zeros((capacity, T + 1, n, spec.obs_dim), spec.obs_dtype),
        state=jnp.zeros((capacity, T + 1, spec.state_dim), spec.state_dtype),
        avail=jnp.zeros((capacity, T + 1, n, spec.num_actions), bool),
        actions=jnp.zeros((capacity, T, n), action_dtype(spec.num_actions)),
        reward=jnp.zeros((capacity, T), jnp.float32),
        terminated=jnp.zeros((capacity, T), bool),
        filled=jnp.zeros((capacity, T), bool),
        alive=jnp.zeros((capacity, T + 1, n), bool),
    )
    return ReplayBuffer(data=data, insert_pos=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def buffer_bytes(buffer: ReplayBuffer) -> int:
    """Bytes held by the stored arrays."""
    return sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(buffer.data))


def insert(buffer: ReplayBuffer, episodes: Episodes) -> ReplayBuffer:
    """Write E episodes (leading axis E <= capacity) at the insert position, wrapping around."""
    num_new = episodes.reward.shape[0]
    slots = (buffer.insert_pos + jnp.arange(num_new)) % buffer.capacity
    data = jax.tree_util.tree_map(lambda store, new: store.at[slots].set(new.astype(store.dtype)),
                                  buffer.data, episodes)
    return ReplayBuffer(
        data=data,
        insert_pos=(buffer.insert_pos + num_new) % buffer.capacity,
        size=jnp.minimum(buffer.size + num_new, buffer.capacity),
    )


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Episodes:
    """B distinct episodes drawn uniformly among those stored (as the official buffer's
    `np.random.choice(..., replace=False)`), in compute dtypes. Needs size >= batch_size."""
    # Gumbel top-k over the stored slots = uniform sampling without replacement.
    scores = jax.random.gumbel(key, (buffer.capacity,))
    scores = jnp.where(jnp.arange(buffer.capacity) < buffer.size, scores, -jnp.inf)
    _, slots = jax.lax.top_k(scores, batch_size)
    picked = jax.tree_util.tree_map(lambda x: x[slots], buffer.data)
    return Episodes(
        obs=picked.obs.astype(jnp.float32),
        state=picked.state.astype(jnp.float32),
        avail=picked.avail,
        actions=picked.actions.astype(jnp.int32),
        reward=picked.reward,
        terminated=picked.terminated,
        filled=picked.filled,
        alive=picked.alive,
    )
