"""The maths on hand-computed arrays, each with and without jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wqmix import losses

jit_or_not = pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])


def maybe_jit(fn, use_jit, **static):
    fn = jax.tree_util.Partial(fn, **static) if static else fn
    return jax.jit(fn) if use_jit else fn


@jit_or_not
def test_one_step_targets_terminal_and_time_limit(use_jit):
    reward = jnp.array([1.0, 2.0, 3.0])
    # step 0 continues, step 1 terminates, step 2 is cut by the time limit: not terminated.
    terminated = jnp.array([False, True, False])
    next_value = jnp.array([10.0, 20.0, 30.0])
    fn = maybe_jit(losses.one_step_targets, use_jit, gamma=0.5)
    y = fn(reward, terminated, next_value)
    np.testing.assert_allclose(y, [1.0 + 0.5 * 10.0, 2.0, 3.0 + 0.5 * 30.0])


@jit_or_not
def test_lambda_targets_hand_computed(use_jit):
    gamma, lam = 0.9, 0.5
    reward = jnp.array([1.0, 0.0, 2.0])
    terminated = jnp.array([False, False, True])
    truncated = jnp.zeros(3, bool)
    next_value = jnp.array([4.0, 6.0, 100.0])  # V(s1), V(s2), V(s3) (s3 terminal: unused)
    g2 = 2.0
    g1 = 0.0 + gamma * ((1 - lam) * 6.0 + lam * g2)
    g0 = 1.0 + gamma * ((1 - lam) * 4.0 + lam * g1)
    fn = maybe_jit(losses.lambda_targets, use_jit, gamma=gamma, lam=lam)
    np.testing.assert_allclose(fn(reward, terminated, truncated, next_value), [g0, g1, g2], rtol=1e-6)


@jit_or_not
def test_lambda_targets_time_limit_bootstraps_and_ignores_padding(use_jit):
    gamma, lam = 0.9, 0.8
    # Episode cut by the time limit after step 1; step 2 is padding with garbage values.
    reward = jnp.array([1.0, 2.0, 50.0])
    terminated = jnp.array([False, False, False])
    truncated = jnp.array([False, True, False])
    next_value = jnp.array([3.0, 5.0, -999.0])
    g1 = 2.0 + gamma * 5.0  # bootstraps from V(s2), does not mix in the padding
    g0 = 1.0 + gamma * ((1 - lam) * 3.0 + lam * g1)
    fn = maybe_jit(losses.lambda_targets, use_jit, gamma=gamma, lam=lam)
    np.testing.assert_allclose(fn(reward, terminated, truncated, next_value)[:2], [g0, g1], rtol=1e-6)


@jit_or_not
def test_lambda_zero_equals_one_step_with_batch_axes(use_jit):
    key = jax.random.key(3)
    k1, k2, k3 = jax.random.split(key, 3)
    reward = jax.random.normal(k1, (5, 4, 1))
    next_value = jax.random.normal(k2, (5, 4, 1))
    terminated = jax.random.bernoulli(k3, 0.3, (5, 4, 1))
    truncated = jnp.zeros_like(terminated)
    lam_fn = maybe_jit(losses.lambda_targets, use_jit, gamma=0.99, lam=0.0)
    one_fn = maybe_jit(losses.one_step_targets, use_jit, gamma=0.99)
    np.testing.assert_allclose(lam_fn(reward, terminated, truncated, next_value),
                               one_fn(reward, terminated, next_value), rtol=1e-6, atol=1e-6)


@jit_or_not
def test_ow_weights(use_jit):
    q_tot = jnp.array([1.0, 5.0, 3.0, -2.0])
    targets = jnp.array([2.0, 4.0, 3.0, -1.0])
    fn = maybe_jit(losses.ow_weights, use_jit, alpha=0.1)
    # underestimated (Q_tot < y) -> 1; over or equal -> alpha
    np.testing.assert_allclose(fn(q_tot, targets), [1.0, 0.1, 0.1, 1.0])


@jit_or_not
def test_cw_weights(use_jit):
    actions = jnp.array([[0, 0], [0, 1], [2, 1], [1, 1]])
    greedy = jnp.array([[0, 0], [0, 0], [2, 0], [0, 2]])
    targets = jnp.array([-5.0, 3.0, 1.0, 0.0])
    central_greedy_value = jnp.array([8.0, 2.0, 1.0, 4.0])
    fn = maybe_jit(losses.cw_weights, use_jit, alpha=0.25)
    w = fn(actions, greedy, targets, central_greedy_value)
    # row 0: the greedy joint action -> 1 even though y < Q*(greedy)
    # row 1: not greedy, y = 3 > 2 -> 1
    # row 2: one agent off the greedy action, y = 1 not > 1 -> alpha
    # row 3: not greedy, y < Q* -> alpha
    np.testing.assert_allclose(w, [1.0, 1.0, 0.25, 0.25])


@jit_or_not
def test_masked_weighted_mse(use_jit):
    pred = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    targ = jnp.array([[0.0, 0.0], [1.0, 10.0]])
    w = jnp.array([[1.0, 0.5], [0.1, 1.0]])
    mask = jnp.array([[True, True], [True, False]])
    fn = maybe_jit(losses.masked_weighted_mse, use_jit)
    expected = (1.0 * 1.0 + 0.5 * 4.0 + 0.1 * 4.0) / 3.0
    np.testing.assert_allclose(fn(pred, targ, w, mask), expected, rtol=1e-6)


def test_masked_losses_empty_mask_is_zero_not_nan():
    x = jnp.ones((3,))
    mask = jnp.zeros((3,), bool)
    assert float(losses.masked_weighted_mse(x, 2 * x, x, mask)) == 0.0
    assert float(losses.masked_mean(x, mask)) == 0.0


def test_shape_mismatch_is_caught():
    with pytest.raises(AssertionError):
        losses.ow_weights(jnp.ones((3,)), jnp.ones((4,)), 0.1)
    with pytest.raises(AssertionError):
        losses.one_step_targets(jnp.ones((3,)), jnp.ones((3,)), jnp.ones((3,)), 0.9)  # float terminated


def test_time_limit_cuts_are_the_last_filled_step_of_episodes_that_did_not_terminate():
    # (T, B) = (4, 3): episode 0 cut at step 3 (the time limit), episode 1 terminated at step 1,
    # episode 2 cut early at step 1 (a host env truncated it).
    filled = jnp.array([[1, 1, 1], [1, 1, 1], [1, 0, 0], [1, 0, 0]], bool)
    terminated = jnp.array([[0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]], bool)
    expected = np.zeros((4, 3), bool)
    expected[3, 0] = expected[1, 2] = True
    np.testing.assert_array_equal(losses.time_limit_cuts(filled, terminated), expected)


# ---- EPyMARL's reward standardisation ------------------------------------------------------------

class EpymarlRunningMeanStd:
    """A NumPy port of EPyMARL's `RunningMeanStd` (`src/components/standarize_stream.py`), float64."""

    def __init__(self, epsilon=1e-4):
        self.mean, self.var, self.count = np.zeros(1), np.ones(1), epsilon

    def update(self, arr):
        arr = arr.reshape(-1, arr.shape[-1])
        batch_mean, batch_var, batch_count = arr.mean(axis=0), arr.var(axis=0, ddof=1), arr.shape[0]
        delta = batch_mean - self.mean
        tot_count = self.count + batch_count
        new_mean = self.mean + delta * batch_count / tot_count
        m_2 = self.var * self.count + batch_var * batch_count + np.square(delta) * self.count * batch_count / tot_count
        self.mean, self.var, self.count = new_mean, m_2 / tot_count, tot_count


def epymarl_standardised(rms, reward, filled):
    """EPyMARL's learner on one batch: cut to the longest episode (`max_t_filled`), update, standardise."""
    longest = int(filled.sum(axis=1).max())
    rewards = reward[:, :longest, None]  # (B, t, 1), as `batch["reward"][:, :-1]`
    rms.update(rewards)
    return ((rewards - rms.mean) / np.sqrt(rms.var))[..., 0]


def test_reward_moments_hand_computed():
    # Episodes of 2 and 1 steps in a layout of 3: the third column is cut, the padding at [1, 1] counts (as 0).
    reward = jnp.array([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    filled = jnp.array([[True, True, False], [True, False, False]])
    m = losses.update_reward_moments(losses.initial_reward_moments(), reward, filled)
    eps = 1e-4
    mean = 1.5 * 4 / (4 + eps)  # batch mean of 1, 2, 3, 0
    var = (1.0 * eps + (5.0 / 3.0) * 4 + 1.5 ** 2 * eps * 4 / (4 + eps)) / (4 + eps)  # batch var, ddof 1: 5/3
    np.testing.assert_allclose([m.mean, m.var], [mean, var], rtol=1e-6)
    assert int(m.seen) == 4
    np.testing.assert_allclose(losses.standardise_rewards(reward, m), (np.asarray(reward) - mean) / np.sqrt(var),
                               rtol=1e-5)


def test_reward_moments_agree_with_epymarls_running_mean_std_over_batches():
    rng = np.random.default_rng(0)
    rms, moments = EpymarlRunningMeanStd(), losses.initial_reward_moments()
    update = jax.jit(losses.update_reward_moments)
    for _ in range(5):
        lengths = rng.integers(1, 7, size=8)  # (B,) episodes of 1..6 steps in a layout of 9
        filled = np.arange(9)[None, :] < lengths[:, None]
        reward = np.where(filled, rng.normal(2.0, 3.0, size=filled.shape), 0.0).astype(np.float32)
        expected = epymarl_standardised(rms, reward.astype(np.float64), filled)
        moments = update(moments, jnp.asarray(reward), jnp.asarray(filled))
        got = np.asarray(losses.standardise_rewards(jnp.asarray(reward), moments))
        np.testing.assert_allclose(got[:, :expected.shape[1]], expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose([moments.mean, moments.var], [rms.mean[0], rms.var[0]], rtol=1e-5)
