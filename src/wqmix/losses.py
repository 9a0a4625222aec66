"""The maths of Weighted QMIX as small pure functions (rlax style).

Arrays are time-major: `(T, ...)` where trailing axes (batch, heads) broadcast. Targets and
weights are constants for the gradient; the learner applies `jax.lax.stop_gradient`.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp


def one_step_targets(reward: jax.Array, terminated: jax.Array, next_value: jax.Array,
                     gamma: float) -> jax.Array:
    """y_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}).

    A step cut by the time limit is not terminated, so it bootstraps from V(s_{t+1}) like any
    other step. Shapes: all `(T, ...)`, equal.
    """
    chex.assert_equal_shape([reward, terminated, next_value])
    chex.assert_type(terminated, bool)
    return reward + gamma * (1.0 - terminated.astype(reward.dtype)) * next_value


def lambda_targets(reward: jax.Array, terminated: jax.Array, truncated: jax.Array,
                   next_value: jax.Array, gamma: float, lam: float) -> jax.Array:
    """TD(lambda) targets, computed backwards over time:

        G_t = r_t + gamma * (1 - terminated_t) * ((1 - l_t) * V(s_{t+1}) + l_t * G_{t+1}),
        l_t = lam * (1 - terminated_t) * (1 - truncated_t),

    so an episode's last step (terminated or cut by the time limit) never mixes in the padded
    steps that follow it, and a time-limit cut bootstraps from V(s_{t+1}). With lam = 0 these
    are the one-step targets. Shapes: all `(T, ...)`, equal.
    """
    chex.assert_equal_shape([reward, terminated, truncated, next_value])
    chex.assert_type([terminated, truncated], bool)
    not_terminated = 1.0 - terminated.astype(reward.dtype)
    step_lambda = lam * not_terminated * (1.0 - truncated.astype(reward.dtype))

    def backward(next_return, inputs):
        r_t, cont_t, lam_t, v_tp1 = inputs
        g_t = r_t + gamma * cont_t * ((1.0 - lam_t) * v_tp1 + lam_t * next_return)
        return g_t, g_t

    _, returns = jax.lax.scan(backward, next_value[-1], (reward, not_terminated, step_lambda, next_value),
                              reverse=True)
    return returns


def time_limit_cuts(filled: jax.Array, terminated: jax.Array) -> jax.Array:
    """The steps at which an episode was cut by the time limit (or any truncation): the last
    filled step of an episode that did not terminate. Such a step bootstraps from V(s_{t+1})
    but must not mix in the padded steps after it (TD(lambda)). Shapes: `(T, B)`, bool."""
    chex.assert_equal_shape([filled, terminated])
    chex.assert_type([filled, terminated], bool)
    next_filled = jnp.concatenate([filled[1:], jnp.zeros_like(filled[:1])], axis=0)
    return filled & ~next_filled & ~terminated


def ow_weights(q_tot: jax.Array, targets: jax.Array, alpha: float) -> jax.Array:
    """Optimistic weighting (OW-QMIX): w = 1 where Q_tot(s, u) < y (the joint action may be
    underestimated), else alpha. Shapes: `(...)`, equal."""
    chex.assert_equal_shape([q_tot, targets])
    return jnp.where(q_tot < targets, 1.0, alpha).astype(q_tot.dtype)


def cw_weights(actions: jax.Array, greedy_actions: jax.Array, targets: jax.Array,
               central_greedy_value: jax.Array, alpha: float) -> jax.Array:
    """Central weighting (CW-QMIX): w = 1 where the joint action is online QMIX's greedy one
    (every agent) or y > Q-hat*(s, greedy joint action), else alpha.

    Shapes: `actions`, `greedy_actions` `(..., agents)`; `targets`, `central_greedy_value` `(...)`.
    """
    chex.assert_equal_shape([actions, greedy_actions])
    chex.assert_equal_shape([targets, central_greedy_value])
    chex.assert_equal_shape_prefix([actions, targets], targets.ndim)
    is_greedy = jnp.all(actions == greedy_actions, axis=-1)
    return jnp.where(is_greedy | (targets > central_greedy_value), 1.0, alpha).astype(targets.dtype)


def greedy_only_weights(actions: jax.Array, greedy_actions: jax.Array) -> jax.Array:
    """The projector write-up's "optimistic" loss weights (its text, 2.4; not the paper's OW): w = 1 where
    every agent took the argmax of its utility (the argmax of Q_mono), else 0.
    Shapes: `(..., agents)` int -> `(...)` float32."""
    chex.assert_equal_shape([actions, greedy_actions])
    return jnp.all(actions == greedy_actions, axis=-1).astype(jnp.float32)


ADVANTAGE_EPS = 1e-6
"""The epsilon of the write-up's omega = |A| / (E|A| + eps). Default: ours (the write-up gives none)."""


def advantage_omega(q_mono: jax.Array, value: jax.Array, abs_advantage_mean: jax.Array) -> jax.Array:
    """The write-up's importance weight (its text, 2.3): omega(s, u) = |A(s, u)| / (m + eps) with
    A = Q_mono(s, u) - V(s) and m the running mean of |A|. Shapes: `(...)`, equal; m `()`."""
    chex.assert_equal_shape([q_mono, value])
    return jnp.abs(q_mono - value) / (abs_advantage_mean + ADVANTAGE_EPS)


def running_mean(mean: jax.Array, batch_mean: jax.Array, rate: float, first: jax.Array) -> jax.Array:
    """m <- (1 - rate) m + rate * batch_mean, or batch_mean itself at the `first` update."""
    return jnp.where(first, batch_mean, (1.0 - rate) * mean + rate * batch_mean)


def omega_anneal(updates: jax.Array, anneal_steps: int | None) -> jax.Array:
    """The write-up's trick 2 as a factor on omega_max: 1 - exp(-updates / anneal_steps); 1 when
    off (None)."""
    if anneal_steps is None:
        return jnp.ones((), jnp.float32)
    return 1.0 - jnp.exp(-jnp.asarray(updates, jnp.float32) / anneal_steps)


def masked_weighted_mse(predictions: jax.Array, targets: jax.Array, weights: jax.Array,
                        mask: jax.Array) -> jax.Array:
    """sum(mask * w * (prediction - y)^2) / sum(mask): the mean over valid entries (the
    official code's normalisation). An all-invalid batch gives 0, never NaN."""
    chex.assert_equal_shape([predictions, targets, weights, mask])
    mask = mask.astype(predictions.dtype)
    squared = weights * jnp.square(predictions - targets)
    return jnp.sum(mask * squared) / jnp.maximum(jnp.sum(mask), 1.0)


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of `values` over the entries where `mask` is true (0 when there are none)."""
    chex.assert_equal_shape([values, mask])
    mask = mask.astype(values.dtype)
    return jnp.sum(mask * values) / jnp.maximum(jnp.sum(mask), 1.0)


class RewardMoments(NamedTuple):
    """Running mean and variance of the rewards the learner has seen (`standardise_rewards`)."""

    mean: jax.Array  # () float32
    var: jax.Array  # () float32
    seen: jax.Array  # () int32: reward entries merged in so far


REWARD_MOMENTS_EPSILON = 1e-4
"""The prior count of the running moments (mean 0, variance 1 before any data). Source: EPyMARL
(`RunningMeanStd(epsilon=1e-4)`, `src/components/standarize_stream.py`)."""


def initial_reward_moments() -> RewardMoments:
    """Mean 0, variance 1, nothing seen (EPyMARL's `RunningMeanStd` at construction)."""
    return RewardMoments(mean=jnp.zeros((), jnp.float32), var=jnp.ones((), jnp.float32),
                         seen=jnp.zeros((), jnp.int32))


def update_reward_moments(moments: RewardMoments, reward: jax.Array, filled: jax.Array) -> RewardMoments:
    """The moments with a batch of rewards merged in, as EPyMARL's learner does it
    (`self.rew_ms.update(rewards)`): over every step of the batch cut to its longest episode, the
    zero reward of a shorter episode's padding included; the batch variance with Bessel's
    correction (`torch.var`); merged by the parallel formula (Chan et al.), the prior counting
    `REWARD_MOMENTS_EPSILON`. reward, filled: (B, T)."""
    chex.assert_equal_shape([reward, filled])
    longest = jnp.max(jnp.sum(filled, axis=1))
    inside = jnp.broadcast_to(jnp.arange(reward.shape[1]) < longest, reward.shape)  # EPyMARL's [:, :max_t_filled]
    entries = jnp.sum(inside, dtype=jnp.int32)
    n = entries.astype(jnp.float32)
    batch_mean = jnp.sum(jnp.where(inside, reward, 0.0)) / n
    # A batch of one entry has no variance (torch gives NaN); a stored batch holds far more.
    batch_var = jnp.sum(jnp.where(inside, jnp.square(reward - batch_mean), 0.0)) / jnp.maximum(n - 1.0, 1.0)
    count = moments.seen.astype(jnp.float32) + REWARD_MOMENTS_EPSILON
    total = count + n
    delta = batch_mean - moments.mean
    m2 = moments.var * count + batch_var * n + jnp.square(delta) * count * n / total
    return RewardMoments(mean=moments.mean + delta * n / total, var=m2 / total,
                         seen=moments.seen + entries)


def standardise_rewards(reward: jax.Array, moments: RewardMoments) -> jax.Array:
    """(r - mean) / sqrt(var), on every entry (padding is masked out of the loss later)."""
    return (reward - moments.mean) / jnp.sqrt(moments.var)
