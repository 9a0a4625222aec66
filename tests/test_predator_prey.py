"""Predator-prey with miscapture punishment: each rule checked on a hand-built grid.

Most tests use a 5x5 grid with 3 agents and 2 prey (`SMALL`); agents and prey a test does not
need are taken out of play with `reset_to(frozen=..., caught=...)`. Positions are (row, col).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wqmix.envs.check import check_env
from wqmix.envs.configs import PredatorPreyConfig
from wqmix.envs.predator_prey import ACTION_NAMES, CATCH, DOWN, LEFT, MOVES, RIGHT, STAY, UP, PredatorPrey
from wqmix.errors import ConfigError

SMALL = PredatorPreyConfig(grid_size=5, num_agents=3, num_prey=2, time_limit=10)
DEFAULT = PredatorPreyConfig()
S, R, D, L, U, C = STAY, RIGHT, DOWN, LEFT, UP, CATCH
FAR = (4, 4)  # a parking cell for entities out of play


@functools.lru_cache(maxsize=None)
def fns(config: PredatorPreyConfig = SMALL):
    """The env and its jitted reset / step / batched step, compiled once per config."""
    env = config.make()
    step = jax.jit(env.step)
    batched_step = jax.jit(jax.vmap(env.step, in_axes=(0, None, None)))
    return env, jax.jit(env.reset), step, batched_step


def step_once(config, agents, prey, actions, seed=0, **layout):
    env, _, step, _ = fns(config)
    state, _ = env.reset_to(agents, prey, **layout)
    return step(jax.random.key(seed), state, jnp.asarray(actions, jnp.int32))


def step_many_keys(config, agents, prey, actions, num_keys=64, **layout):
    """One step from the same layout under `num_keys` different step keys."""
    env, _, _, batched_step = fns(config)
    state, _ = env.reset_to(agents, prey, **layout)
    keys = jax.random.split(jax.random.key(123), num_keys)
    return batched_step(keys, state, jnp.asarray(actions, jnp.int32))


def grid_of(config, state_vector):
    n = config.grid_size
    return np.asarray(state_vector).reshape(n, n, 3)


# ------------------------------------------------------------------------------ config


def test_action_order_is_the_official_one():
    assert ACTION_NAMES == ("right", "down", "left", "up", "stay", "catch")
    assert (R, D, L, U, S, C) == (0, 1, 2, 3, 4, 5)
    np.testing.assert_array_equal(MOVES, [[0, 1], [1, 0], [0, -1], [-1, 0], [0, 0], [0, 0]])


def test_default_config_is_the_papers():
    env = DEFAULT.make()
    assert isinstance(env, PredatorPrey)
    assert DEFAULT.name == "predator-prey"
    assert (DEFAULT.grid_size, DEFAULT.num_agents, DEFAULT.num_prey) == (10, 8, 8)
    assert (DEFAULT.punishment, DEFAULT.capture_reward) == (-2.0, 10.0)
    assert (DEFAULT.time_limit, DEFAULT.obs_radius, DEFAULT.agents_to_capture) == (200, 2, 2)
    spec = env.spec
    assert (spec.num_agents, spec.obs_dim, spec.state_dim, spec.num_actions, spec.time_limit) == (8, 75, 300, 6, 200)
    assert spec.obs_dtype == np.bool_ and spec.state_dtype == np.bool_  # 0/1 grids: bits in replay


@pytest.mark.parametrize("changes, field, fragment", [
    ({"grid_size": 1}, "env.grid_size", "must be >= 2"),
    ({"num_agents": 0}, "env.num_agents", "must be >= 1"),
    ({"num_agents": 1}, "env.num_agents", "must be >= agents_to_capture (2)"),
    ({"num_prey": 0}, "env.num_prey", "must be >= 1"),
    ({"grid_size": 3, "num_agents": 5, "num_prey": 5}, "env.num_prey", "must fit on the 3x3 grid (9 cells)"),
    ({"punishment": 0.5}, "env.punishment", "<= 0"),
    ({"punishment": float("nan")}, "env.punishment", "<= 0"),
    ({"capture_reward": 0.0}, "env.capture_reward", "> 0"),
    ({"time_limit": 0}, "env.time_limit", "must be >= 1"),
    ({"obs_radius": -1}, "env.obs_radius", "must be >= 0"),
    ({"agents_to_capture": 5}, "env.agents_to_capture", "must be in 1..4"),
])
def test_bad_config_names_the_field(changes, field, fragment):
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(DEFAULT, **changes).validate("env")
    assert info.value.path == field
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("punishment", [0.0, -0.5, -1.0, -1.5, -2.0])
def test_paper_punishments_are_valid(punishment):
    dataclasses.replace(DEFAULT, punishment=punishment).validate("env")


def test_reset_to_rejects_bad_layouts():
    env = SMALL.make()
    with pytest.raises(ValueError, match="distinct"):
        env.reset_to([(0, 0), (0, 0), (1, 1)], [(2, 2), (3, 3)])
    with pytest.raises(ValueError, match="distinct"):
        env.reset_to([(0, 0), (0, 1), (1, 1)], [(1, 1), (3, 3)])
    with pytest.raises(ValueError, match="inside"):
        env.reset_to([(0, 5), (0, 1), (1, 1)], [(2, 2), (3, 3)])
    with pytest.raises(ValueError, match="3 .row, column. pairs"):
        env.reset_to([(0, 0), (0, 1)], [(2, 2), (3, 3)])
    # Out-of-play entities may share cells.
    env.reset_to([(0, 0), (0, 0), (1, 1)], [(1, 1), (3, 3)], frozen=[False, True, True])


# ------------------------------------------------------------------------------ available actions


def test_moves_off_the_grid_are_unavailable():
    env = SMALL.make()
    # Corner (0, 0), corner (4, 4), top edge (0, 2); prey away from all of them.
    _, ts = env.reset_to([(0, 0), (4, 4), (0, 2)], [(2, 2), (2, 4)])
    #                       right  down   left   up     stay  catch
    expected = np.array([[True, True, False, False, True, False],
                         [False, False, True, True, True, False],
                         [True, True, True, False, True, False]])
    np.testing.assert_array_equal(np.asarray(ts.avail), expected)
    _, ts = env.reset_to([(4, 0), (0, 4), (2, 2)], [(0, 2), (4, 2)])
    np.testing.assert_array_equal(np.asarray(ts.avail), [[True, False, False, True, True, False],
                                                         [False, True, True, False, True, False],
                                                         [True, True, True, True, True, False]])


def test_catch_is_available_only_next_to_a_prey():
    env = SMALL.make()
    # Prey at (2, 2): agent 0 is its left neighbour, agent 1 diagonal, agent 2 two cells away.
    _, ts = env.reset_to([(2, 1), (1, 1), (2, 4)], [(2, 2), FAR], caught=[False, True])
    np.testing.assert_array_equal(np.asarray(ts.avail)[:, CATCH], [True, False, False])
    # A captured prey cannot be caught.
    _, ts = env.reset_to([(2, 1), (1, 1), (2, 4)], [(2, 2), FAR], caught=[True, True])
    np.testing.assert_array_equal(np.asarray(ts.avail)[:, CATCH], [False, False, False])


def test_frozen_agents_only_have_stay():
    env = SMALL.make()
    _, ts = env.reset_to([(2, 1), (2, 3), (0, 0)], [(2, 2), FAR], frozen=[True, False, True])
    stay_only = np.eye(6, dtype=bool)[STAY]
    np.testing.assert_array_equal(np.asarray(ts.avail)[0], stay_only)
    np.testing.assert_array_equal(np.asarray(ts.avail)[2], stay_only)
    np.testing.assert_array_equal(np.asarray(ts.avail)[1], [True, True, True, True, True, True])


# ------------------------------------------------------------------------------ movement


def test_move_into_a_free_cell_happens():
    state, ts = step_once(SMALL, [(2, 2), (0, 0), (4, 0)], [(0, 4), FAR], [R, D, U], caught=[False, True])
    np.testing.assert_array_equal(np.asarray(state.agent_pos), [[2, 3], [1, 0], [3, 0]])
    assert float(ts.reward) == 0.0


def test_move_into_an_agent_or_a_prey_is_blocked():
    # Agent 0 moves right into agent 1 (staying); agent 2 moves down into the prey at (1, 4).
    state, _ = step_once(SMALL, [(2, 2), (2, 3), (0, 4)], [(1, 4), FAR], [R, S, D], caught=[False, True])
    np.testing.assert_array_equal(np.asarray(state.agent_pos), [[2, 2], [2, 3], [0, 4]])


def test_an_unavailable_move_off_the_grid_stays():
    state, _ = step_once(SMALL, [(0, 0), (4, 4), (2, 2)], [(0, 4), FAR], [U, R, S], caught=[False, True])
    np.testing.assert_array_equal(np.asarray(state.agent_pos), [[0, 0], [4, 4], [2, 2]])


def test_frozen_agents_do_not_move_and_do_not_block():
    # Agent 1 is frozen on (2, 3): agent 0 can move into that cell, agent 1 cannot move.
    state, _ = step_once(SMALL, [(2, 2), (2, 3), (0, 0)], [(4, 0), FAR], [R, L, S],
                         frozen=[False, True, False], caught=[False, True])
    np.testing.assert_array_equal(np.asarray(state.agent_pos)[0], [2, 3])
    assert not bool(state.agent_active[1])


def test_random_agent_order_decides_who_gets_a_contested_cell():
    # Agents 0 and 1 both move into (2, 2); exactly one gets it, depending on the step key.
    states, _ = step_many_keys(SMALL, [(2, 1), (2, 3), (0, 0)], [(4, 4), FAR], [R, L, S], caught=[False, True])
    pos = np.asarray(states.agent_pos)  # (keys, agents, 2)
    zero_won = np.all(pos[:, 0] == [2, 2], axis=-1) & np.all(pos[:, 1] == [2, 3], axis=-1)
    one_won = np.all(pos[:, 1] == [2, 2], axis=-1) & np.all(pos[:, 0] == [2, 1], axis=-1)
    assert np.all(zero_won ^ one_won)
    assert 10 < zero_won.sum() < 54, zero_won.sum()


def test_a_chain_of_moves_depends_on_the_order():
    # Agent 0 follows agent 1 to the right: it moves only when agent 1 went first.
    states, _ = step_many_keys(SMALL, [(2, 1), (2, 2), (0, 0)], [(4, 4), FAR], [R, R, S], caught=[False, True])
    pos = np.asarray(states.agent_pos)
    assert np.all(pos[:, 1] == [2, 3])
    followed = np.all(pos[:, 0] == [2, 2], axis=-1)
    assert np.all(followed | np.all(pos[:, 0] == [2, 1], axis=-1))
    assert 0 < followed.sum() < 64


# ------------------------------------------------------------------------------ capture


def test_two_catching_agents_capture_a_prey_and_freeze():
    config = SMALL
    # Prey 0 at (2, 2) flanked by agents 0 and 1; agent 2 and prey 1 far away.
    state, ts = step_once(config, [(2, 1), (2, 3), (0, 0)], [(2, 2), (4, 4)], [C, C, S])
    assert float(ts.reward) == 10.0
    np.testing.assert_array_equal(np.asarray(state.agent_active), [False, False, True])
    np.testing.assert_array_equal(np.asarray(state.prey_alive), [False, True])
    grid = grid_of(config, ts.state)
    assert grid[2, 1, 0] == 0 and grid[2, 3, 0] == 0 and grid[2, 2, 1] == 0  # cells freed
    assert grid[0, 0, 0] == 1 and grid[..., 0].sum() == 1  # only agent 2 remains
    assert grid[..., 1].sum() == 1  # only prey 1 remains
    avail = np.asarray(ts.avail)
    np.testing.assert_array_equal(avail[:2], np.eye(6, dtype=bool)[[STAY, STAY]])
    assert np.all(np.asarray(ts.obs)[:2] == 0)
    assert not bool(ts.terminated) and not bool(ts.truncated)


def test_three_catching_agents_all_freeze():
    state, ts = step_once(SMALL, [(2, 1), (2, 3), (1, 2)], [(2, 2), (4, 4)], [C, C, C])
    assert float(ts.reward) == 10.0
    np.testing.assert_array_equal(np.asarray(state.agent_active), [False, False, False])
    np.testing.assert_array_equal(np.asarray(state.prey_alive), [False, True])


def test_an_adjacent_agent_that_does_not_catch_stays_in_play():
    state, ts = step_once(SMALL, [(2, 1), (2, 3), (1, 2)], [(2, 2), (4, 4)], [C, C, S])
    assert float(ts.reward) == 10.0
    np.testing.assert_array_equal(np.asarray(state.agent_active), [False, False, True])


def test_a_captured_prey_does_not_move_and_the_others_do():
    state, ts = step_once(SMALL, [(2, 1), (2, 3), (0, 0)], [(2, 2), (4, 4)], [C, C, S])
    np.testing.assert_array_equal(np.asarray(state.prey_pos)[0], [2, 2])
    assert tuple(np.asarray(state.prey_pos)[1]) in {(3, 4), (4, 3)}  # the corner prey had to move


# ------------------------------------------------------------------------------ miscapture


@pytest.mark.parametrize("punishment", [-2.0, -0.5, 0.0])
def test_a_lone_catcher_gets_the_punishment(punishment):
    config = dataclasses.replace(SMALL, punishment=punishment)
    state, ts = step_once(config, [(2, 1), (0, 0), (0, 4)], [(2, 2), (4, 4)], [C, S, S])
    assert float(ts.reward) == punishment
    np.testing.assert_array_equal(np.asarray(state.agent_active), [True, True, True])
    np.testing.assert_array_equal(np.asarray(state.prey_alive), [True, True])


@pytest.mark.parametrize("punishment", [-2.0, -0.5])
def test_the_punishment_is_per_prey_per_step(punishment):
    config = dataclasses.replace(SMALL, punishment=punishment)
    # Two prey, each miscaught by its own lone catcher: 2p.
    _, ts = step_once(config, [(1, 0), (3, 4), (4, 0)], [(1, 1), (3, 3)], [C, C, S])
    assert float(ts.reward) == 2 * punishment
    # One lone catcher between two prey: it miscatches both, 2p.
    _, ts = step_once(config, [(2, 2), (0, 0), (4, 4)], [(2, 1), (2, 3)], [C, S, S])
    assert float(ts.reward) == 2 * punishment


def test_a_catch_with_no_prey_next_to_the_agent_does_nothing():
    state, ts = step_once(SMALL, [(0, 0), (4, 4), (2, 4)], [(2, 2), FAR], [C, C, S], caught=[False, True])
    assert float(ts.reward) == 0.0
    np.testing.assert_array_equal(np.asarray(state.agent_active), [True, True, True])


def test_an_agent_frozen_by_a_capture_no_longer_catches_a_later_prey():
    # Agent 1 at (2, 2) is next to prey 0 at (2, 1) (with agent 0 at (2, 0)) and prey 1 at (2, 3).
    # Prey are handled in a random order: when prey 0 goes first, agent 1 freezes and is no lone
    # catcher of prey 1 (reward 10); when prey 1 goes first, it is miscaught first (10 - 2 = 8).
    states, ts = step_many_keys(SMALL, [(2, 0), (2, 2), (4, 4)], [(2, 1), (2, 3)], [C, C, S])
    rewards = np.asarray(ts.reward)
    assert set(rewards.tolist()) == {10.0, 8.0}
    assert np.all(~np.asarray(states.agent_active)[:, :2])


# ------------------------------------------------------------------------------ prey movement


def test_a_prey_moves_to_its_only_free_neighbour():
    state, _ = step_once(SMALL, [(0, 1), (4, 4), (4, 2)], [(0, 0), FAR], [S, S, S], caught=[False, True])
    np.testing.assert_array_equal(np.asarray(state.prey_pos)[0], [1, 0])
    # Centre prey with agents on three sides: it takes the fourth.
    state, _ = step_once(SMALL, [(1, 2), (3, 2), (2, 1)], [(2, 2), FAR], [S, S, S], caught=[False, True])
    np.testing.assert_array_equal(np.asarray(state.prey_pos)[0], [2, 3])


def test_a_surrounded_prey_stays():
    # Corner prey with agents on both neighbours.
    state, _ = step_once(SMALL, [(0, 1), (1, 0), (4, 4)], [(0, 0), FAR], [S, S, S], caught=[False, True])
    np.testing.assert_array_equal(np.asarray(state.prey_pos)[0], [0, 0])
    # Top-edge prey with agents on its three in-grid neighbours.
    state, _ = step_once(SMALL, [(0, 1), (1, 2), (0, 3)], [(0, 2), FAR], [S, S, S], caught=[False, True])
    np.testing.assert_array_equal(np.asarray(state.prey_pos)[0], [0, 2])


def test_prey_move_uniformly_to_free_neighbours_only():
    # Prey at (2, 2) with an agent above and another prey at (2, 3) that may move away first.
    states, _ = step_many_keys(SMALL, [(1, 2), (0, 0), (0, 4)], [(2, 2), (2, 3)], [S, S, S], num_keys=256)
    first = {tuple(p) for p in np.asarray(states.prey_pos)[:, 0].tolist()}
    assert first <= {(3, 2), (2, 1), (2, 3)} and {(3, 2), (2, 1)} <= first
    both = np.asarray(states.prey_pos)
    assert np.all(np.any(both[:, 0] != both[:, 1], axis=-1))  # never on the same cell
    counts = [np.all(both[:, 0] == c, axis=-1).sum() for c in [(3, 2), (2, 1)]]
    assert min(counts) > 40, counts


def test_random_rollouts_keep_every_entity_on_its_own_cell():
    env, reset, step, _ = fns(SMALL)

    def body(carry, key):
        state, ts = carry
        action_key, step_key = jax.random.split(key)
        actions = jax.random.categorical(action_key, jnp.where(ts.avail, 0.0, -jnp.inf)).astype(jnp.int32)
        state, ts = env.step(step_key, state, actions)
        return (state, ts), (state.agent_pos, state.prey_pos, state.agent_active, state.prey_alive)

    @jax.jit
    def rollout(key):
        start = env.reset(key)
        return jax.lax.scan(body, start, jax.random.split(key, SMALL.time_limit))[1]

    for seed in range(4):
        agents, prey, active, alive = map(np.asarray, rollout(jax.random.key(seed)))
        for t in range(SMALL.time_limit):
            cells = [tuple(c) for c in agents[t][active[t]]] + [tuple(c) for c in prey[t][alive[t]]]
            assert len(cells) == len(set(cells))
            assert all(0 <= r < 5 and 0 <= c < 5 for r, c in cells)


# ------------------------------------------------------------------------------ observation, state


def test_observation_window_near_a_corner():
    env = SMALL.make()
    # Agent 0 at (0, 0); agent 1 at (1, 2) is inside its window; prey 0 at (2, 1) inside; prey 1 at
    # (3, 3) outside (3 rows away); agent 2 at (4, 4) outside.
    _, ts = env.reset_to([(0, 0), (1, 2), (4, 4)], [(2, 1), (3, 3)])
    obs = np.asarray(ts.obs)
    assert obs.shape == (3, 75) and obs.dtype == np.float32
    expected = np.zeros((5, 5, 3), np.float32)
    expected[2, 2, 0] = 1  # itself, at the window's centre
    expected[3, 4, 0] = 1  # agent 1: row 0 + 1, column 0 + 2
    expected[4, 3, 1] = 1  # prey 0: row 0 + 2, column 0 + 1
    np.testing.assert_array_equal(obs[0], expected.reshape(-1))
    window = obs[0].reshape(5, 5, 3)
    assert np.all(window[:2] == 0) and np.all(window[:, :2] == 0)  # outside the grid
    assert np.all(window[..., 2] == 0)  # no second prey type
    # Agent 1 at (1, 2): window rows -1..3, columns 0..4.
    expected = np.zeros((5, 5, 3), np.float32)
    expected[2, 2, 0] = 1  # itself
    expected[1, 0, 0] = 1  # agent 0 at (0, 0)
    expected[3, 1, 1] = 1  # prey 0 at (2, 1)
    expected[4, 3, 1] = 1  # prey 1 at (3, 3)
    np.testing.assert_array_equal(obs[1], expected.reshape(-1))


def test_frozen_agents_observe_zeros_and_are_not_seen():
    env = SMALL.make()
    _, ts = env.reset_to([(2, 1), (2, 2), (0, 0)], [(2, 3), FAR], frozen=[True, False, False], caught=[False, True])
    obs = np.asarray(ts.obs)
    assert np.all(obs[0] == 0)
    window = obs[1].reshape(5, 5, 3)
    assert window[2, 1, 0] == 0  # the frozen agent on the left is off the grid
    assert window[2, 2, 0] == 1 and window[2, 3, 1] == 1 and window[0, 0, 0] == 1


def test_state_is_the_full_grid():
    env = SMALL.make()
    _, ts = env.reset_to([(0, 0), (1, 2), (4, 4)], [(2, 1), (3, 3)])
    state = np.asarray(ts.state)
    assert state.shape == (75,) and state.dtype == np.float32
    expected = np.zeros((5, 5, 3), np.float32)
    for r, c in [(0, 0), (1, 2), (4, 4)]:
        expected[r, c, 0] = 1
    for r, c in [(2, 1), (3, 3)]:
        expected[r, c, 1] = 1
    np.testing.assert_array_equal(state, expected.reshape(-1))
    assert float(ts.reward) == 0.0 and not bool(ts.terminated) and not bool(ts.truncated) and not bool(ts.won)


# ------------------------------------------------------------------------------ episode end


def test_terminates_when_all_prey_are_caught():
    state, ts = step_once(SMALL, [(2, 1), (2, 3), (0, 0)], [(2, 2), FAR], [C, C, S], caught=[False, True])
    assert float(ts.reward) == 10.0
    assert bool(ts.terminated) and not bool(ts.truncated) and not bool(ts.won)
    assert bool(state.agent_active[2])


def test_terminates_when_all_agents_are_frozen():
    state, ts = step_once(SMALL, [(2, 1), (2, 3), (1, 2)], [(2, 2), (4, 4)], [C, C, C])
    assert bool(state.prey_alive[1])
    assert bool(ts.terminated) and not bool(ts.truncated)


def test_the_time_limit_truncates_and_does_not_terminate():
    limit = SMALL.time_limit
    layout = ([(0, 0), (0, 2), (0, 4)], [(4, 0), (4, 4)])
    state, ts = step_once(SMALL, *layout, [S, S, S], t=limit - 2)
    assert int(state.t) == limit - 1 and not bool(ts.truncated) and not bool(ts.terminated)
    state, ts = step_once(SMALL, *layout, [S, S, S], t=limit - 1)
    assert int(state.t) == limit and bool(ts.truncated) and not bool(ts.terminated)
    # The game ending on the last step is a termination, not a truncation.
    _, ts = step_once(SMALL, [(2, 1), (2, 3), (0, 0)], [(2, 2), FAR], [C, C, S], caught=[False, True], t=limit - 1)
    assert bool(ts.terminated) and not bool(ts.truncated)


def test_time_limit_of_the_reset_episode_truncates_after_time_limit_steps():
    env, reset, step, _ = fns(SMALL)
    state, ts = reset(jax.random.key(0))
    stay = jnp.full((3,), STAY, jnp.int32)
    for t in range(SMALL.time_limit):
        assert not bool(ts.truncated) and not bool(ts.terminated)
        state, ts = step(jax.random.key(t), state, stay)
    assert bool(ts.truncated) and not bool(ts.terminated)


# ------------------------------------------------------------------------------ whole episodes


def test_a_scripted_cooperative_policy_reaches_the_maximum_return_40():
    env, _, step, _ = fns(DEFAULT)
    # Four pairs each flank a prey; four more prey stand away from every agent.
    agents = [(1, 0), (1, 2), (1, 5), (1, 7), (6, 0), (6, 2), (6, 5), (6, 7)]
    prey = [(1, 1), (1, 6), (6, 1), (6, 6), (3, 3), (3, 8), (8, 3), (8, 8)]
    state, ts = env.reset_to(agents, prey)
    episode_return, steps = 0.0, 0
    while not (bool(ts.terminated) or bool(ts.truncated)):
        # Policy: catch when catching is possible, else stay.
        actions = jnp.where(ts.avail[:, CATCH], CATCH, STAY).astype(jnp.int32)
        state, ts = step(jax.random.key(steps), state, actions)
        episode_return += float(ts.reward)
        steps += 1
    assert episode_return == 40.0 and steps == 1
    assert bool(ts.terminated) and not bool(ts.truncated)
    assert not np.any(np.asarray(state.agent_active))
    assert int(np.asarray(state.prey_alive).sum()) == 4


@pytest.mark.integration  # plays whole episodes
def test_check_env_passes_for_the_default_config():
    check_env(DEFAULT.make(), num_episodes=1, max_steps=8)
    check_env(SMALL.make())


def test_reset_and_step_are_deterministic_given_the_key():
    env, reset, step, _ = fns(DEFAULT)
    state_a, ts_a = reset(jax.random.key(7))
    state_b, ts_b = reset(jax.random.key(7))
    for x, y in zip(jax.tree.leaves((state_a, ts_a)), jax.tree.leaves((state_b, ts_b))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    actions = jax.random.categorical(jax.random.key(1), jnp.where(ts_a.avail, 0.0, -jnp.inf)).astype(jnp.int32)
    out_a = step(jax.random.key(3), state_a, actions)
    out_b = step(jax.random.key(3), state_b, actions)
    for x, y in zip(jax.tree.leaves(out_a), jax.tree.leaves(out_b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # Different keys give different layouts, each on distinct in-grid cells.
    layouts = set()
    for seed in range(8):
        state, ts = reset(jax.random.key(seed))
        cells = np.concatenate([np.asarray(state.agent_pos), np.asarray(state.prey_pos)])
        assert len({tuple(c) for c in cells.tolist()}) == 16
        assert cells.min() >= 0 and cells.max() < 10
        assert np.asarray(ts.state).reshape(10, 10, 3)[..., :2].sum() == 16
        layouts.add(cells.tobytes())
    assert len(layouts) == 8


def random_policy_returns(config, num_episodes, seed=0):
    """Undiscounted returns of the uniform random policy over available actions (jit, vmap)."""
    env = config.make()

    def episode(key):
        reset_key, key = jax.random.split(key)
        state, ts = env.reset(reset_key)

        def body(carry, key):
            state, ts, total, done = carry
            action_key, step_key = jax.random.split(key)
            actions = jax.random.categorical(action_key, jnp.where(ts.avail, 0.0, -jnp.inf)).astype(jnp.int32)
            state, ts = env.step(step_key, state, actions)
            total = total + jnp.where(done, 0.0, ts.reward)
            done = done | ts.terminated | ts.truncated
            return (state, ts, total, done), None

        init = (state, ts, jnp.zeros((), jnp.float32), jnp.asarray(False))
        (_, _, total, done), _ = jax.lax.scan(body, init, jax.random.split(key, config.time_limit))
        return total, done

    return jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(seed), num_episodes))


@pytest.mark.integration  # many random rollouts
def test_the_random_policy_is_far_below_the_maximum_return():
    returns, done = random_policy_returns(DEFAULT, 64)
    returns = np.asarray(returns)
    assert np.all(np.asarray(done))
    mean = float(returns.mean())
    print(f"random policy mean return at p = -2 over 64 episodes: {mean:.2f}")
    assert np.isfinite(mean) and mean < 40.0
    assert np.all(returns <= 40.0)
