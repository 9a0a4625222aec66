"""The compiled training loop: determinism, seeds, targets, counters, and the matrix game outcome."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from wqmix import config as cfg
from wqmix.train import Trainer, make_train, seed_keys

pytestmark = pytest.mark.integration  # the compiled training loop, and learning runs


def leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.fixture(scope="module")
def ow_runs():
    """OW-QMIX tiny runs: seed 0 twice through make_train, seed 1, and seeds (0, 1) vmapped."""
    config = tiny_config("ow-qmix")
    train = jax.jit(make_train(config))
    first, _ = train(jax.random.key(0))
    again, _ = train(jax.random.key(0))
    other, _ = train(jax.random.key(1))
    both, metrics = jax.jit(jax.vmap(make_train(config)))(seed_keys(0, 2))
    together, _ = train(seed_keys(0, 2))  # a batch of keys: the seeds run in one loop
    return config, first, again, other, both, metrics, together


def test_same_seed_gives_bit_identical_parameters(ow_runs):
    _, first, again, *_ = ow_runs
    assert leaves_equal(first.learner.params, again.learner.params)
    assert leaves_equal(first.learner.opt_state, again.learner.opt_state)
    assert leaves_equal(first.buffer.data, again.buffer.data)


def test_different_seeds_differ(ow_runs):
    _, first, _, other, both, *_ = ow_runs
    assert not leaves_equal(first.learner.params, other.learner.params)
    lane0 = jax.tree_util.tree_map(lambda x: x[0], both.learner.params)
    lane1 = jax.tree_util.tree_map(lambda x: x[1], both.learner.params)
    assert not leaves_equal(lane0, lane1)


@pytest.mark.parametrize("how", ["vmap", "batch of keys"])
def test_vmapped_seed_matches_the_single_run(ow_runs, how):
    _, first, _, other, both, _, together = ow_runs
    runs = both if how == "vmap" else together
    for i, single in enumerate((first, other)):
        lane = jax.tree_util.tree_map(lambda x: x[i], runs)
        # Uniform exploration: the data collected depends on the keys alone and is identical;
        # parameters agree to float rounding (vmap batches the matmuls differently).
        assert leaves_equal(lane.buffer.data, single.buffer.data)
        for a, b in zip(jax.tree_util.tree_leaves(lane.learner.params), jax.tree_util.tree_leaves(single.learner.params)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_counters_and_schedule(ow_runs):
    config, first, _, _, _, metrics, _ = ow_runs
    # The matrix game: one step per episode, one env: 96 episodes, learning from episode 8.
    assert int(first.env_steps) == 96 and int(first.episodes) == 96
    assert int(first.updates) == 96 - config.train.batch_size + 1
    assert int(first.buffer.size) == config.train.buffer_size
    assert int(metrics.episodes[0]) == 96 and int(metrics.learn_iterations[0]) == 89
    # Targets are copied every 16 episodes once learning runs: last copy at episode 96.
    assert int(first.last_target_update_episode) == 96
    assert leaves_equal(first.learner.params, first.learner.target_params)


def test_targets_stay_fixed_between_copies():
    config = tiny_config("qmix", total_env_steps=24)
    config = dataclasses.replace(config, algo=dataclasses.replace(config.algo, target_update_interval=10_000))
    trainer = Trainer(config)
    state = trainer.init(jax.random.key(3))
    final, _ = jax.jit(trainer.run_chunk)(state, jnp.int32(24))
    assert int(final.updates) == 24 - 8 + 1
    assert leaves_equal(final.learner.target_params, state.learner.params)  # never copied
    assert not leaves_equal(final.learner.params, state.learner.params)  # but learning happened


def test_standardised_rewards_merge_every_sampled_batch_and_are_what_is_learned():
    from wqmix.envs.payoffs import PAPER_PAYOFF

    plain = tiny_config("qmix", total_env_steps=24)
    assert Trainer(plain).init(jax.random.key(3)).learner.reward_moments is None
    config = dataclasses.replace(plain, algo=dataclasses.replace(plain.algo, standardise_rewards=True))
    trainer = Trainer(config)
    state = trainer.init(jax.random.key(3))
    assert int(state.learner.reward_moments.seen) == 0
    final, metrics = jax.jit(trainer.run_chunk)(state, jnp.int32(24))
    # The matrix game: one step per episode, so each update of 8 episodes merges 8 rewards.
    assert int(final.learner.reward_moments.seen) == int(final.updates) * 8 == 17 * 8
    payoff = np.asarray(PAPER_PAYOFF)
    assert payoff.min() < float(final.learner.reward_moments.mean) < payoff.max()
    assert float(final.learner.reward_moments.var) > 0
    # One-step episodes: the targets are the rewards the update saw. Uniform exploration pays
    # -40/9 on average; standardised, the batches' rewards average near 0.
    target_mean = float(metrics.update.target_mean) / int(metrics.learn_iterations)
    assert abs(target_mean) < 1.5, target_mean


def test_parallel_envs_and_several_updates_per_iteration():
    config = tiny_config("vdn", total_env_steps=40, num_envs=4, updates_per_iteration=3)
    trainer = Trainer(config)
    final, metrics = jax.jit(trainer.run_chunk)(trainer.init(jax.random.key(0)), jnp.int32(40))
    assert int(final.episodes) == 40 and int(metrics.iterations) == 10
    # Learning starts once 8 episodes are stored: after the 2nd iteration of 4 episodes.
    assert int(metrics.learn_iterations) == 9 and int(final.updates) == 27
    assert int(final.buffer.size) == 32 and int(final.buffer.insert_pos) == 40 % 32


def test_seeds_run_together_match_their_single_runs_when_episode_lengths_differ():
    """`run_chunk_seeds` holds a seed that reached the stop still while the others go on: each
    seed's state equals its own single run, chunk by chunk."""
    from wqmix.envs.configs import PredatorPreyConfig

    base = tiny_config("qmix", total_env_steps=60, num_envs=2)
    # 3 x 3 grid, 2 agents, 1 prey, episodes of at most 6 steps: captures end some early.
    config = cfg.validate(dataclasses.replace(
        base, env=PredatorPreyConfig(grid_size=3, num_agents=2, num_prey=1, time_limit=6, punishment=-0.5),
        train=dataclasses.replace(base.train, batch_size=4)))
    trainer = Trainer(config)
    keys = seed_keys(0, 3)
    together = jax.jit(trainer.run_chunk_seeds)
    single = jax.jit(trainer.run_chunk)
    states = jax.vmap(trainer.init)(keys)
    alone = [trainer.init(k) for k in keys]
    for stop in (20, 40, 60):
        states, metrics = together(states, jnp.int32(stop))
        results = [single(s, jnp.int32(stop)) for s in alone]
        alone = [state for state, _ in results]
        steps = np.asarray(states.env_steps)
        assert (steps >= stop).all()
        for i, (state, lane_metrics) in enumerate(results):
            lane = jax.tree_util.tree_map(lambda x: x[i], states)
            assert int(lane.env_steps) == int(state.env_steps) and int(lane.updates) == int(state.updates)
            assert leaves_equal(lane.buffer, state.buffer)
            assert np.array_equal(jax.random.key_data(lane.key), jax.random.key_data(state.key))
            for a, b in zip(jax.tree_util.tree_leaves(lane.learner), jax.tree_util.tree_leaves(state.learner)):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
            assert int(metrics.iterations[i]) == int(lane_metrics.iterations)
            assert int(metrics.env_steps[i]) == int(lane_metrics.env_steps)
    # The seeds did not all take the same number of env steps: some were held.
    assert len(set(np.asarray(states.env_steps).tolist())) > 1
