"""Episode replay buffer: compact storage, circular insertion, sampling without replacement among
stored episodes only, and the dtype round trip."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from wqmix.buffer import Episodes, action_dtype, buffer_bytes, init_buffer, insert, planned_bytes, sample
from wqmix.envs.base import EnvSpec
from wqmix.envs.matrix_game import MatrixGame

# A tiny spec: 2 agents, obs 3, state 4, 5 actions, episodes of at most 2 steps.
TINY = EnvSpec(num_agents=2, obs_dim=3, state_dim=4, num_actions=5, time_limit=2,
               obs_dtype=np.uint8, state_dtype=np.uint8)

_insert = jax.jit(insert)


def _episodes(ids, spec=TINY, obs=None, actions=None):
    """Episodes whose every field identifies the episode: reward = id, obs = state = id,
    actions = id % num_actions; float32/int32 arrays as an actor would produce them."""
    ids = np.asarray(ids, np.float32)
    E, T, n = len(ids), spec.time_limit, spec.num_agents
    fill = ids[:, None, None, None]
    if obs is None:
        obs = np.broadcast_to(fill, (E, T + 1, n, spec.obs_dim)).astype(np.float32)
    if actions is None:
        actions = np.broadcast_to(ids[:, None, None].astype(np.int32) % spec.num_actions, (E, T, n))
    avail = np.zeros((E, T + 1, n, spec.num_actions), bool)
    avail[..., 0] = True
    return Episodes(
        obs=jnp.asarray(obs, jnp.float32),
        state=jnp.asarray(np.broadcast_to(ids[:, None, None], (E, T + 1, spec.state_dim)), jnp.float32),
        avail=jnp.asarray(avail),
        actions=jnp.asarray(actions, jnp.int32),
        reward=jnp.asarray(np.broadcast_to(ids[:, None], (E, T)), jnp.float32),
        terminated=jnp.asarray(np.tile([False, True], (E, 1))),
        filled=jnp.ones((E, T), bool),
        alive=jnp.asarray(np.broadcast_to(ids[:, None, None] % 2 == 0, (E, T + 1, n))),
    )


# --------------------------------------------------------------------------------------------
# Layout


def test_init_buffer_shapes_and_compact_dtypes():
    spec = MatrixGame().spec  # 2 agents, obs = state = 5 (uint8), 3 actions, T = 1
    buf = init_buffer(spec, 4)
    d = buf.data
    assert buf.capacity == 4
    assert d.obs.shape == (4, 2, 2, 5) and d.obs.dtype == jnp.uint8
    assert d.state.shape == (4, 2, 5) and d.state.dtype == jnp.uint8
    # 0/1 fields as bits along the last axis: 3 actions and 2 agents fit in one byte.
    assert d.avail.shape == (4, 2, 2, 1) and d.avail.dtype == jnp.uint8
    assert d.alive.shape == (4, 2, 1) and d.alive.dtype == jnp.uint8
    assert buf.bit_fields == (("avail", 3), ("alive", 2))
    assert d.actions.shape == (4, 1, 2) and d.actions.dtype == jnp.uint8
    assert d.reward.shape == (4, 1) and d.reward.dtype == jnp.float32
    assert d.terminated.shape == (4, 1) and d.terminated.dtype == jnp.bool_
    assert d.filled.shape == (4, 1) and d.filled.dtype == jnp.bool_
    assert int(buf.insert_pos) == 0 and int(buf.size) == 0
    assert not bool(d.filled.any())


def test_binary_observations_and_states_are_stored_as_bits_and_come_back_exactly():
    # obs_dim 11 and state_dim 17 are not multiples of 8: the last byte is partly padding.
    spec = EnvSpec(num_agents=3, obs_dim=11, state_dim=17, num_actions=9, time_limit=2,
                   obs_dtype=np.bool_, state_dtype=np.bool_)
    rng = np.random.default_rng(1)
    E, T, n = 4, spec.time_limit, spec.num_agents
    obs = rng.integers(0, 2, size=(E, T + 1, n, spec.obs_dim)).astype(np.float32)
    state = rng.integers(0, 2, size=(E, T + 1, spec.state_dim)).astype(np.float32)
    avail = rng.integers(0, 2, size=(E, T + 1, n, spec.num_actions)).astype(bool)
    alive = rng.integers(0, 2, size=(E, T + 1, n)).astype(bool)
    episodes = _episodes([1, 2, 3, 4], spec=spec, obs=obs).replace(
        state=jnp.asarray(state), avail=jnp.asarray(avail), alive=jnp.asarray(alive))
    buf = _insert(init_buffer(spec, 5), episodes)
    assert buf.data.obs.shape == (5, T + 1, n, 2) and buf.data.obs.dtype == jnp.uint8
    assert buf.data.state.shape == (5, T + 1, 3)
    assert buf.data.avail.shape == (5, T + 1, n, 2)
    # Bit i of byte j is entry 8j + i, most significant first (np.packbits order).
    np.testing.assert_array_equal(np.asarray(buf.data.obs[:E]), np.packbits(obs.astype(bool), axis=-1))
    out = sample(buf, jax.random.key(0), E)
    order = np.asarray(out.reward[:, 0]).astype(int) - 1
    assert sorted(order) == [0, 1, 2, 3]
    assert out.obs.dtype == jnp.float32 and out.avail.dtype == jnp.bool_ and out.alive.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(out.obs), obs[order])
    np.testing.assert_array_equal(np.asarray(out.state), state[order])
    np.testing.assert_array_equal(np.asarray(out.avail), avail[order])
    np.testing.assert_array_equal(np.asarray(out.alive), alive[order])
    # Bits: 2 + 3 + 2 + 1 bytes per step instead of 3 * 11 + 17 + 3 * 9 + 3 (uint8 / bool).
    assert buffer_bytes(buf) < buffer_bytes(init_buffer(spec._replace(obs_dtype=np.uint8, state_dtype=np.uint8), 5))


def test_action_dtype_thresholds():
    assert action_dtype(3) == np.uint8
    assert action_dtype(256) == np.uint8
    assert action_dtype(257) == np.uint16
    assert action_dtype(65536) == np.uint16
    assert action_dtype(65537) == np.int32


def test_buffer_bytes_by_hand():
    spec = TINY._replace(state_dtype=np.float32)
    buf = init_buffer(spec, 3)
    # capacity 3, T 2 (T+1 = 3), agents 2, obs 3 (uint8), state 4 (float32), actions 5 (uint8)
    obs = 3 * 3 * 2 * 3 * 1        # 54
    state = 3 * 3 * 4 * 4          # 144
    avail = 3 * 3 * 2 * 1          # 18: 5 actions as bits in one byte
    actions = 3 * 2 * 2 * 1        # 12
    reward = 3 * 2 * 4             # 24
    terminated = filled = 3 * 2    # 6 each
    alive = 3 * 3 * 1              # 9: 2 agents as bits in one byte
    assert obs + state + avail + actions + reward + terminated + filled + alive == 273
    assert buffer_bytes(buf) == 273
    assert planned_bytes(spec, 3) == 273  # the same, without allocating
    assert planned_bytes(spec, 3, window=4) == buffer_bytes(init_buffer(spec, 3, window=4))


# --------------------------------------------------------------------------------------------
# Insertion


def test_insert_wraps_around():
    buf = init_buffer(TINY, 5)
    expected_rewards = np.zeros(5)
    # (episodes, insert_pos after, size after, slot contents after)
    plan = [
        ([1, 2], 2, 2, [1, 2, 0, 0, 0]),
        ([3, 4], 4, 4, [1, 2, 3, 4, 0]),
        ([5, 6], 1, 5, [6, 2, 3, 4, 5]),
        ([7, 8], 3, 5, [6, 7, 8, 4, 5]),
        ([9, 10], 0, 5, [6, 7, 8, 9, 10]),
    ]
    for ids, pos, size, slots in plan:
        buf = _insert(buf, _episodes(ids))
        assert int(buf.insert_pos) == pos
        assert int(buf.size) == size
        np.testing.assert_array_equal(np.asarray(buf.data.reward[:, 0]), slots)
        # Every field of a slot belongs to the same episode.
        np.testing.assert_array_equal(np.asarray(buf.data.obs[:, 0, 0, 0]), slots)
        np.testing.assert_array_equal(np.asarray(buf.data.state[:, -1, 0]), slots)
        np.testing.assert_array_equal(np.asarray(buf.data.actions[:, 1, 1]), np.asarray(slots) % 5)
        np.testing.assert_array_equal(np.asarray(buf.data.filled[:, 0]), np.asarray(slots) > 0)
        expected_rewards = slots
    assert buf.data.obs.dtype == jnp.uint8 and buf.data.actions.dtype == jnp.uint8
    np.testing.assert_array_equal(np.asarray(buf.data.reward[:, 1]), expected_rewards)


# --------------------------------------------------------------------------------------------
# Sampling


def _many_samples(buf, batch_size, num_keys, seed=0):
    keys = jax.random.split(jax.random.key(seed), num_keys)
    return jax.jit(jax.vmap(lambda k: sample(buf, k, batch_size)))(keys)


def test_sample_only_returns_stored_episodes_without_replacement():
    buf = init_buffer(TINY, 10)
    buf = _insert(buf, _episodes([101, 102, 103]))
    assert int(buf.size) == 3
    num_keys = 2000
    batches = _many_samples(buf, 2, num_keys)
    rewards = np.asarray(batches.reward[:, :, 0])  # (keys, batch)
    assert rewards.shape == (num_keys, 2)
    assert set(np.unique(rewards)) == {101.0, 102.0, 103.0}
    # no duplicates within a batch
    assert np.all(rewards[:, 0] != rewards[:, 1])
    # uniform among stored: each episode is in a batch with probability 2/3
    for r in (101.0, 102.0, 103.0):
        assert abs(np.mean((rewards == r).any(axis=1)) - 2 / 3) < 0.05
    # no padding slot ever comes back
    assert bool(np.asarray(batches.filled).all())


def test_sample_with_size_equal_to_batch_returns_every_stored_episode():
    buf = init_buffer(TINY, 10)
    buf = _insert(buf, _episodes([101, 102, 103]))
    batches = _many_samples(buf, 3, 200, seed=1)
    rewards = np.sort(np.asarray(batches.reward[:, :, 0]), axis=1)
    np.testing.assert_array_equal(rewards, np.broadcast_to([101.0, 102.0, 103.0], (200, 3)))


def test_sample_after_wrap_covers_full_buffer():
    buf = init_buffer(TINY, 4)
    for ids in ([1, 2], [3, 4], [5, 6]):  # slots end as [5, 6, 3, 4]
        buf = _insert(buf, _episodes(ids))
    batches = _many_samples(buf, 4, 50, seed=2)
    rewards = np.sort(np.asarray(batches.reward[:, :, 0]), axis=1)
    np.testing.assert_array_equal(rewards, np.broadcast_to([3.0, 4.0, 5.0, 6.0], (50, 4)))


def test_dtype_round_trip():
    rng = np.random.default_rng(0)
    E, T, n = 3, TINY.time_limit, TINY.num_agents
    obs = rng.integers(0, 256, size=(E, T + 1, n, TINY.obs_dim)).astype(np.float32)
    actions = rng.integers(0, TINY.num_actions, size=(E, T, n)).astype(np.int32)
    episodes = _episodes([11, 12, 13], obs=obs, actions=actions)
    buf = _insert(init_buffer(TINY, 6), episodes)
    assert buf.data.obs.dtype == jnp.uint8
    out = sample(buf, jax.random.key(0), 3)
    assert out.obs.dtype == jnp.float32
    assert out.state.dtype == jnp.float32
    assert out.actions.dtype == jnp.int32
    assert out.avail.dtype == jnp.bool_
    assert out.reward.dtype == jnp.float32
    assert out.terminated.dtype == jnp.bool_ and out.filled.dtype == jnp.bool_
    order = np.asarray(out.reward[:, 0]).astype(int) - 11  # which original each row is
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_array_equal(np.asarray(out.obs), obs[order])
    np.testing.assert_array_equal(np.asarray(out.actions), actions[order])
    np.testing.assert_array_equal(np.asarray(out.state), np.asarray(episodes.state)[order])
    np.testing.assert_array_equal(np.asarray(out.avail), np.asarray(episodes.avail)[order])
    np.testing.assert_array_equal(np.asarray(out.terminated), np.asarray(episodes.terminated)[order])
