"""Action selection: masked greedy, masked epsilon-greedy, and the linear epsilon schedule."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_greedy(q: jax.Array, avail: jax.Array) -> jax.Array:
    """Argmax of `q` over the available actions. q: (..., actions) float; avail: same, bool.
    Returns (...) int32. Every row must have an available action (the env checker enforces it)."""
    return jnp.argmax(jnp.where(avail, q, -jnp.inf), axis=-1).astype(jnp.int32)


def masked_uniform(key: jax.Array, avail: jax.Array) -> jax.Array:
    """A uniformly random available action per row. avail: (..., actions) bool -> (...) int32."""
    logits = jnp.where(avail, 0.0, -jnp.inf)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def masked_epsilon_greedy(key: jax.Array, q: jax.Array, avail: jax.Array, epsilon: jax.Array | float) -> jax.Array:
    """With probability epsilon (independently per row) a uniformly random available action,
    otherwise the greedy available one, as in the official `EpsilonGreedyActionSelector`."""
    explore_key, action_key = jax.random.split(key)
    explore = jax.random.uniform(explore_key, q.shape[:-1]) < epsilon
    return jnp.where(explore, masked_uniform(action_key, avail), masked_greedy(q, avail))


def linear_epsilon(env_steps: jax.Array | int, start: float, finish: float, anneal_steps: int) -> jax.Array:
    """start -> finish linearly over `anneal_steps` env steps, then constant (official
    `DecayThenFlatSchedule`, linear). anneal_steps = 0 gives `finish` at once."""
    if anneal_steps <= 0:
        return jnp.asarray(finish, jnp.float32)
    fraction = jnp.minimum(jnp.asarray(env_steps, jnp.float32) / anneal_steps, 1.0)
    return jnp.asarray(start + (finish - start) * fraction, jnp.float32)
