"""Action selection: masked greedy, masked epsilon-greedy, the linear epsilon schedule. (The
environment checker's tests are in test_check_env.py.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wqmix.action import linear_epsilon, masked_epsilon_greedy, masked_greedy, masked_uniform

# --------------------------------------------------------------------------------------------
# Masked greedy on hand-built arrays


def test_masked_greedy_hand_built():
    q = jnp.array([
        [1.0, 5.0, 3.0, 2.0],      # argmax 1 unavailable -> 2
        [-1.0, -5.0, -3.0, -0.5],  # all negative; argmax 3 unavailable -> 0
        [-7.0, -2.0, -9.0, -4.0],  # only the worst two available -> 3
        [0.0, 0.0, 0.0, 0.0],      # single available action
        [4.0, 1.0, 2.0, 3.0],      # argmax available
    ])
    avail = jnp.array([
        [True, False, True, True],
        [True, True, True, False],
        [False, False, True, True],
        [False, False, True, False],
        [True, True, True, True],
    ])
    out = masked_greedy(q, avail)
    assert out.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(out), [2, 0, 3, 2, 0])


def test_masked_greedy_leading_axes():
    q = jnp.array([[[-3.0, -1.0, -2.0], [2.0, 1.0, 0.0]]])  # (1, 2, 3)
    avail = jnp.array([[[True, False, True], [False, True, True]]])
    out = masked_greedy(q, avail)
    assert out.shape == (1, 2)
    np.testing.assert_array_equal(np.asarray(out), [[2, 1]])


# --------------------------------------------------------------------------------------------
# Property test: one jitted vectorised call over many random rows

N_ROWS = 100_000
N_ACTIONS = 7


@jax.jit
def _select(key, q, avail, epsilon):
    return masked_epsilon_greedy(key, q, avail, epsilon), masked_greedy(q, avail)


def _random_rows(seed, n=N_ROWS, a=N_ACTIONS):
    rng = np.random.default_rng(seed)
    density = rng.random((n, 1))  # from nearly empty to nearly full masks
    avail = rng.random((n, a)) < density
    avail[np.arange(n), rng.integers(0, a, n)] = True  # at least one available action per row
    q = rng.normal(size=(n, a)).astype(np.float32) * 3.0
    epsilon = rng.random(n).astype(np.float32)
    return q, avail, epsilon


def test_masked_selection_property_over_many_random_masks():
    q, avail, epsilon = _random_rows(0)
    assert avail.any(axis=1).all()
    assert (avail.sum(axis=1) == 1).any() and (avail.sum(axis=1) == N_ACTIONS).any()
    chosen, greedy = _select(jax.random.key(0), jnp.asarray(q), jnp.asarray(avail), jnp.asarray(epsilon))
    chosen, greedy = np.asarray(chosen), np.asarray(greedy)
    rows = np.arange(N_ROWS)

    # epsilon-greedy never picks an unavailable action
    assert chosen.dtype == np.int32
    assert np.all((chosen >= 0) & (chosen < N_ACTIONS))
    assert np.all(avail[rows, chosen])

    # greedy equals numpy's argmax over the available actions
    expected = np.where(avail, q, -np.inf).argmax(axis=1)
    np.testing.assert_array_equal(greedy, expected)

    # Exploration happens at the per-row rate: P(choice != greedy) = eps * (1 - 1/k).
    k = avail.sum(axis=1)
    expected_rate = np.mean(epsilon * (1.0 - 1.0 / k))
    observed_rate = np.mean(chosen != greedy)
    assert abs(observed_rate - expected_rate) < 0.01, (observed_rate, expected_rate)
    # Rows with epsilon < 0.05 are almost always greedy; rows with epsilon > 0.95 often are not.
    low, high = epsilon < 0.05, epsilon > 0.95
    assert np.mean(chosen[low] == greedy[low]) > 0.95
    assert np.mean(chosen[high & (k > 1)] != greedy[high & (k > 1)]) > 0.4


def test_epsilon_one_is_uniform_over_available_and_zero_is_greedy():
    n = 40_000
    mask_row = np.array([True, False, True, True, False, True, False])  # k = 4
    avail = np.broadcast_to(mask_row, (n, N_ACTIONS)).copy()
    rng = np.random.default_rng(1)
    q = rng.normal(size=(n, N_ACTIONS)).astype(np.float32)
    q[:, 3] += 100.0  # action 3 is always the greedy one

    chosen, greedy = _select(jax.random.key(1), jnp.asarray(q), jnp.asarray(avail), jnp.ones(n))
    chosen, greedy = np.asarray(chosen), np.asarray(greedy)
    assert np.all(greedy == 3)
    counts = np.bincount(chosen, minlength=N_ACTIONS)
    freqs = counts / n
    assert np.all(counts[~mask_row] == 0)
    np.testing.assert_allclose(freqs[mask_row], 0.25, atol=0.03)
    # Chi-square over the 4 available actions (3 dof): 99.9% quantile is about 16.3.
    expected = n / 4
    chi2 = np.sum((counts[mask_row] - expected) ** 2 / expected)
    assert chi2 < 16.3, chi2

    chosen0, _ = _select(jax.random.key(2), jnp.asarray(q), jnp.asarray(avail), jnp.zeros(n))
    np.testing.assert_array_equal(np.asarray(chosen0), greedy)


def test_masked_epsilon_greedy_scalar_epsilon():
    q = jnp.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    avail = jnp.array([[True, True, False], [False, True, True]])
    for seed in range(5):
        out = masked_epsilon_greedy(jax.random.key(seed), q, avail, 0.0)
        np.testing.assert_array_equal(np.asarray(out), [1, 1])


def test_masked_uniform_only_available():
    avail = jnp.array([[False, False, True, False]] * 8)
    out = masked_uniform(jax.random.key(3), avail)
    np.testing.assert_array_equal(np.asarray(out), [2] * 8)


# --------------------------------------------------------------------------------------------
# Linear epsilon schedule


def test_linear_epsilon_hand_computed():
    start, finish, anneal = 1.0, 0.05, 100
    assert float(linear_epsilon(0, start, finish, anneal)) == pytest.approx(1.0)
    assert float(linear_epsilon(50, start, finish, anneal)) == pytest.approx(0.525)
    assert float(linear_epsilon(25, start, finish, anneal)) == pytest.approx(0.7625)
    assert float(linear_epsilon(100, start, finish, anneal)) == pytest.approx(0.05)
    assert float(linear_epsilon(1000, start, finish, anneal)) == pytest.approx(0.05)
    # As a traced step count inside jit, vectorised.
    steps = jnp.array([0, 50, 100, 250])
    out = jax.jit(jax.vmap(lambda t: linear_epsilon(t, start, finish, anneal)))(steps)
    np.testing.assert_allclose(np.asarray(out), [1.0, 0.525, 0.05, 0.05], rtol=1e-6)
    # Rising schedules also work (start < finish).
    assert float(linear_epsilon(30, 0.0, 1.0, 60)) == pytest.approx(0.5)


def test_linear_epsilon_zero_anneal_gives_finish():
    for t in (0, 1, 10_000):
        assert float(linear_epsilon(t, 1.0, 0.2, 0)) == pytest.approx(0.2)
    assert linear_epsilon(0, 1.0, 0.2, 0).dtype == jnp.float32
