"""Packed batches (`buffer.pack`): episodes laid end to end in fewer rows give the learner the
same loss and gradients as the padded batch, for every algorithm; the layout is checked by hand,
and training with packing follows training without it."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wqmix import config as cfg
from wqmix.agents import init_params, make_networks
from wqmix.buffer import Episodes, pack, pack_layout, sample
from wqmix.config import ALGORITHMS, NetworkConfig
from wqmix.envs.base import EnvSpec
from wqmix.learner import make_loss
from wqmix.train import Trainer, seed_keys

LENGTHS = [1, 5, 2, 3]  # steps of each episode of a batch with time limit 5 (width 6)


def _identified_batch(lengths, T, n=2, obs_dim=3, state_dim=4, num_actions=3, seed=0):
    """Episodes of the given lengths whose values say where they come from: obs[e, t] and
    state[e, t] = 100 e + t, reward[e, t] = 10 e + t + 1 on real steps; the padding repeats
    the final state, as rollouts pad, and carries junk the loss must never see."""
    rng = np.random.default_rng(seed)
    B = len(lengths)
    t_plus = np.arange(T + 1)
    stamp = 100.0 * np.arange(B)[:, None] + np.minimum(t_plus[None], np.asarray(lengths)[:, None])  # (B, T+1)
    filled = t_plus[None, :T] < np.asarray(lengths)[:, None]
    terminated = np.zeros((B, T), bool)
    for e, L in enumerate(lengths):  # even episodes terminate, odd ones are cut by the time limit
        if e % 2 == 0:
            terminated[e, L - 1] = True
    avail = rng.random((B, T + 1, n, num_actions)) < 0.7
    avail[..., 0] = True
    return Episodes(
        obs=jnp.asarray(np.broadcast_to(stamp[:, :, None, None], (B, T + 1, n, obs_dim))
                        + rng.normal(size=(B, T + 1, n, obs_dim)) * 0.1, jnp.float32),
        state=jnp.asarray(np.broadcast_to(stamp[:, :, None], (B, T + 1, state_dim)) / 100.0
                          + rng.normal(size=(B, T + 1, state_dim)), jnp.float32),
        avail=jnp.asarray(avail),
        actions=jnp.asarray(np.where(filled[..., None], rng.integers(0, num_actions, (B, T, n)), 0), jnp.int32),
        reward=jnp.asarray(np.where(filled, 10.0 * np.arange(B)[:, None] + np.arange(T)[None] + 1, 0.0), jnp.float32),
        terminated=jnp.asarray(terminated),
        filled=jnp.asarray(filled),
        alive=jnp.ones((B, T + 1, n), bool),
    )


def test_pack_layout_longest_first_next_fit_by_hand():
    batch = _identified_batch(LENGTHS, T=5)
    layout = pack_layout(batch.filled)
    # Columns taken: 2, 6, 3, 4. Longest first: episode 1 fills row 0; episode 3 opens row 1;
    # episode 2 does not fit beside it (4 + 3 > 6) and opens row 2; episode 0 joins it (3 + 2 <= 6).
    assert np.asarray(layout.row).tolist() == [2, 0, 2, 1]
    assert np.asarray(layout.column).tolist() == [3, 0, 0, 0]
    assert int(layout.rows_needed) == 3


def test_pack_puts_every_step_where_the_layout_says():
    batch = _identified_batch(LENGTHS, T=5)
    packed, starts = pack(batch, pack_layout(batch.filled), rows=4)
    assert packed.obs.shape == (4, 6, 2, 3) and packed.actions.shape == (4, 5, 2)
    reward, filled = np.asarray(packed.reward), np.asarray(packed.filled)
    # Row 2: episode 2 (steps at columns 0-1, its final state at 2), episode 0 (step at 3, final
    # state at 4), column 5 unused. Row 3 holds nothing.
    np.testing.assert_array_equal(filled[2], [True, True, False, True, False])
    np.testing.assert_array_equal(reward[2], [21.0, 22.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(reward[1], [31.0, 32.0, 33.0, 0.0, 0.0])
    np.testing.assert_array_equal(reward[0], [11.0, 12.0, 13.0, 14.0, 15.0])
    assert not filled[3].any() and not reward[3].any()
    np.testing.assert_array_equal(np.asarray(starts), [[1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0],
                                                       [1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]])
    # States (T + 1 entries per episode) follow their episode: 100 e + t.
    state_stamp = np.round(np.asarray(packed.obs)[..., 0, 0])
    np.testing.assert_array_equal(state_stamp[2, :5], [200, 201, 202, 0, 1])
    np.testing.assert_array_equal(state_stamp[0], [100, 101, 102, 103, 104, 105])
    np.testing.assert_array_equal(np.asarray(packed.terminated)[2], [False, True, False, True, False])
    np.testing.assert_array_equal(np.asarray(packed.actions)[2, :2], np.asarray(batch.actions)[2, :2])
    np.testing.assert_array_equal(np.asarray(packed.avail)[1, :4], np.asarray(batch.avail)[3, :4])


SPEC = EnvSpec(num_agents=2, obs_dim=3, state_dim=4, num_actions=3, time_limit=6)
NET = NetworkConfig(agent_hidden=8, mixer_embed=4, hypernet_embed=8, central_agent_hidden=8,
                    central_mixer_hidden=16)
PACK_LENGTHS = [6, 2, 1, 3, 6, 1, 2, 4]  # two cut by the time limit; 3 rows of width 7 hold the rest


@pytest.mark.parametrize("algo_name, td_lambda", [
    ("ow-qmix", 0.0), ("qmix", 0.6), ("iql", 0.0), *(pytest.param(*args, marks=pytest.mark.slow) for args in (
        ("cw-qmix", 0.0), ("vdn", 0.0), ("ow-qmix-no-central", 0.0), ("projector-qmix", 0.0)))])
def test_packed_batch_gives_the_padded_batch_loss_and_gradients(algo_name, td_lambda):
    algo = dataclasses.replace(ALGORITHMS[algo_name], td_lambda=td_lambda)
    networks = make_networks(algo, NET, SPEC)
    params = init_params(networks, SPEC, jax.random.key(0))
    target = init_params(networks, SPEC, jax.random.key(1))
    loss_fn = make_loss(algo, networks)
    batch = _identified_batch(PACK_LENGTHS, T=SPEC.time_limit, seed=3)
    layout = pack_layout(batch.filled)
    assert int(layout.rows_needed) == 5
    packed, starts = pack(batch, layout, rows=5)

    grad = jax.jit(jax.grad(loss_fn, has_aux=True))
    carry = {"abs_advantage": jnp.float32(0.7)} if algo.projector.kind != "none" else None
    padded_grads, padded_metrics = grad(params, target, batch, 3, carry, None, None)
    packed_grads, packed_metrics = grad(params, target, packed, 3, carry, None, starts)
    assert float(padded_metrics.loss) > 1e-3
    assert packed_metrics.extras.keys() == padded_metrics.extras.keys()
    for name in ("loss", "qmix_loss", "central_loss", "mean_weight", "q_taken_mean", "target_mean", "td_error_abs",
                 *padded_metrics.extras):
        def metric(m, name=name):
            return m.extras[name] if name in m.extras else getattr(m, name)
        np.testing.assert_allclose(float(metric(packed_metrics)), float(metric(padded_metrics)),
                                   rtol=2e-5, atol=1e-6, err_msg=name)
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(packed_grads)[0],
                            jax.tree_util.tree_leaves(padded_grads)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6,
                                   err_msg=jax.tree_util.keystr(path))

    # Without the resets the packed rows would run one episode's memory into the next.
    _, unreset = grad(params, target, packed, 3, carry, None, None)
    assert abs(float(unreset.loss) - float(padded_metrics.loss)) > 1e-4


def _predator_prey(packed_rows, num_seeds=1):
    """A small predator-prey whose random episodes end at many lengths below the time limit."""
    base = cfg.official_defaults("predator-prey")
    config = dataclasses.replace(
        base,
        env=dataclasses.replace(base.env, grid_size=4, num_agents=2, num_prey=1, punishment=0.0, time_limit=12,
                                agents_to_capture=1),
        network=NET,
        train=dataclasses.replace(base.train, total_env_steps=240, batch_size=6, buffer_size=40,
                                  packed_rows=packed_rows),
        algo=dataclasses.replace(base.algo, target_update_interval=10),
        num_seeds=num_seeds)
    return cfg.validate(config)


@pytest.mark.slow  # whole training runs, twice each: `pytest -m slow`
@pytest.mark.parametrize("num_seeds", [1, 2])
def test_training_with_packed_batches_follows_training_without(num_seeds):
    keys = seed_keys(0, num_seeds)
    final = {}
    for rows in ((), (2, 4, 6)):
        trainer = Trainer(_predator_prey(rows, num_seeds))
        assert trainer.packed_rows == rows[:2]  # 6 rows would not be fewer than the batch's 6
        states = jax.jit(trainer.run_chunk_seeds)(jax.vmap(trainer.init)(keys), jnp.asarray(240, jnp.int32))[0]
        final[rows] = states
    unpacked, packed = final[()], final[(2, 4, 6)]
    assert int(np.min(np.asarray(packed.learner.steps))) > 10
    for a, b in zip(jax.tree_util.tree_leaves(packed.learner.params), jax.tree_util.tree_leaves(unpacked.learner.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(packed.env_steps), np.asarray(unpacked.env_steps))
    # The packed branches did run: batches from this replay fit in 2 or 4 rows.
    buffer = jax.tree_util.tree_map(lambda x: x[0], packed.buffer)
    needed = [int(pack_layout(sample(buffer, jax.random.key(k), 6).filled).rows_needed) for k in range(20)]
    assert min(needed) <= 4, needed
