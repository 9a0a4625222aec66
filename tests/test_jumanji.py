"""Jumanji's multi-agent envs through `JumanjiEnv`: the protocol (check_env), agreement with the raw
Jumanji env stepped with the same keys and actions, hand-built ends of episodes, jit and vmap,
refusals, the config path and a short training run."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jumanji = pytest.importorskip("jumanji")

from conftest import tiny_config  # noqa: E402
from wqmix import config as cfg  # noqa: E402
from wqmix.envs.check import check_env  # noqa: E402
from wqmix.envs.jumanji_env import JumanjiEnv, storage_dtype  # noqa: E402
from wqmix.envs.user_configs import JumanjiConfig  # noqa: E402
from wqmix.errors import ConfigError  # noqa: E402

LAST = 2  # jumanji.types.StepType.LAST
NOOP, LOAD = 0, 5  # LBF's actions (jumanji.environments.routing.lbf.constants)
TURN_LEFT = 2  # RWARE's (jumanji.environments.routing.robot_warehouse.types.Action)

pytestmark = pytest.mark.integration  # real envs: the integration tier


def make(env_id: str, **kwargs) -> JumanjiEnv:
    return JumanjiEnv(jumanji.make(env_id, **kwargs), name=env_id)


def random_actions(rng: np.random.Generator, avail: np.ndarray) -> np.ndarray:
    """(agents,) int32: one available action per agent."""
    return np.array([rng.choice(np.flatnonzero(row)) for row in avail], np.int32)


@pytest.mark.parametrize("env_id, kwargs, spec", [
    # LBF's defaults (Jumanji): 8x8 grid, 2 agents, 2 foods, vector view 3 * (agents + foods),
    # values from -1 (out of sight) to 8 (the grid size): int8.
    ("LevelBasedForaging-v0", {}, (2, 12, 24, 6, 100, np.int8)),
    # RWARE's (Jumanji): 4 robots, sensor range 1: 8 own features + 8 cells x 5 + 9 cells x 2 = 66,
    # values up to the 20-row grid's last row (19): uint8.
    pytest.param("RobotWarehouse-v0", {"time_limit": 50}, (4, 66, 264, 5, 50, np.uint8),
                 marks=pytest.mark.slow),  # 14 s; RWARE's time-limit test stays in CI
])
def test_check_env_passes_and_the_spec_is_jumanjis(env_id, kwargs, spec):
    env = make(env_id, **kwargs)
    s = env.spec
    assert (s.num_agents, s.obs_dim, s.state_dim, s.num_actions, s.time_limit, s.obs_dtype) == spec
    assert s.state_dtype == s.obs_dtype and env.padded == ()
    assert check_env(env, num_episodes=2) == []


def test_storage_dtype_is_the_smallest_exact_one():
    assert storage_dtype(0, 1) is np.bool_
    assert storage_dtype(0, 255) is np.uint8
    assert storage_dtype(-1, 8) is np.int8
    assert storage_dtype(-1, 200) is np.int16
    assert storage_dtype(0, 300) is np.uint16
    assert storage_dtype(-1, 40000) is np.float32


def play_both(env: JumanjiEnv, seed: int, choose) -> list[tuple]:
    """Steps `env` and its raw Jumanji env with the same key and actions until the raw episode's
    LAST step: [(ours, raw, actions)] from the reset on."""
    raw = env.env
    reset, raw_reset = jax.jit(env.reset), jax.jit(raw.reset)
    step, raw_step = jax.jit(env.step), jax.jit(raw.step)
    key = jax.random.key(seed)
    state, ts = reset(key)
    raw_state, raw_ts = raw_reset(key)
    rows = [(ts, raw_ts, None)]
    rng = np.random.default_rng(seed)
    while int(raw_ts.step_type) != LAST:
        actions = choose(rng, np.asarray(ts.avail))
        key, step_key = jax.random.split(key)
        state, ts = step(step_key, state, jnp.asarray(actions))
        raw_state, raw_ts = raw_step(raw_state, jnp.asarray(actions))
        rows.append((ts, raw_ts, actions))
    return rows


def assert_same_views(ts, raw_ts, num_agents: int) -> None:
    view = np.asarray(raw_ts.observation.agents_view).reshape(num_agents, -1)
    np.testing.assert_array_equal(ts.obs, view.astype(np.float32))
    np.testing.assert_array_equal(ts.state, view.reshape(-1))
    np.testing.assert_array_equal(ts.avail, raw_ts.observation.action_mask)
    assert ts.obs.dtype == jnp.float32 and ts.avail.dtype == jnp.bool_


def test_lbf_steps_as_jumanji_does():
    """A random episode of LBF (to its end, at most the 100-step limit): views, masks, the summed
    reward, and the step_type/discount rule for the end."""
    env = make("LevelBasedForaging-v0")
    rows = play_both(env, 3, random_actions)
    for ts, raw_ts, _ in rows:
        assert_same_views(ts, raw_ts, 2)
        assert float(ts.reward) == pytest.approx(float(np.sum(raw_ts.reward)), abs=1e-7)
        last = int(raw_ts.step_type) == LAST
        ended = bool(np.all(np.asarray(raw_ts.discount) == 0))
        assert bool(ts.terminated) == (last and ended)
        assert bool(ts.truncated) == (last and not ended)
    assert len(rows) - 1 <= 100


def test_lbf_time_limit_is_a_truncation():
    """Agents that never load eat nothing: the episode runs to `time_limit` = 10, where Jumanji
    gives LAST with discount 1: truncated, not terminated; no reward on the way."""
    env = make("LevelBasedForaging-v0", time_limit=10)
    rows = play_both(env, 0, lambda rng, avail: np.full(2, NOOP, np.int32))
    assert len(rows) == 11
    for ts, raw_ts, _ in rows[:-1]:
        assert not bool(ts.terminated) and not bool(ts.truncated) and float(ts.reward) == 0.0
    ts, raw_ts, _ = rows[-1]
    assert np.all(np.asarray(raw_ts.discount) == 1.0)
    assert bool(ts.truncated) and not bool(ts.terminated)


def lbf_state(step_count: int):
    """A hand-built LBF state: agents of levels 1 and 2 at (2, 2) and (2, 4) on both sides of a
    level-3 food at (2, 3); a level-1 food at (5, 5) is eaten already."""
    from jumanji.environments.routing.lbf.types import Agent, Food, State

    agents = Agent(id=jnp.arange(2), position=jnp.array([[2, 2], [2, 4]]), level=jnp.array([1, 2]),
                   loading=jnp.zeros(2, bool))
    food = Food(id=jnp.arange(2), position=jnp.array([[2, 3], [5, 5]]), level=jnp.array([3, 1]),
                eaten=jnp.array([False, True]))
    return State(agents=agents, food_items=food, step_count=jnp.int32(step_count), key=jax.random.PRNGKey(0))


@pytest.mark.parametrize("step_count", [0, 9])
def test_lbf_eating_the_last_food_is_terminal(step_count):
    """Both agents load the last food: the episode ends for real (at the time limit too, step 10),
    with the team reward the food's level over the total food level, 3/4, split by level
    (1/4 and 1/2: agent 0's alone would be 1/4)."""
    env = make("LevelBasedForaging-v0", time_limit=10)
    _, ts = jax.jit(env.step)(jax.random.key(0), lbf_state(step_count), jnp.array([LOAD, LOAD], jnp.int32))
    _, raw_ts = env.env.step(lbf_state(step_count), jnp.array([LOAD, LOAD], jnp.int32))
    np.testing.assert_allclose(raw_ts.reward, [0.25, 0.5], atol=1e-7)
    assert float(ts.reward) == pytest.approx(0.75, abs=1e-7)
    assert bool(ts.terminated) and not bool(ts.truncated)
    # Every food eaten, so out of sight: (-1, -1, 0) each; then the agent itself and the other one
    # as (row, column, level), positions unchanged (the grid is within the field of view).
    np.testing.assert_array_equal(ts.obs, [[-1, -1, 0, -1, -1, 0, 2, 2, 1, 2, 4, 2],
                                           [-1, -1, 0, -1, -1, 0, 2, 4, 2, 2, 2, 1]])
    np.testing.assert_array_equal(ts.state, np.asarray(ts.obs).reshape(-1))
    stored = np.asarray(ts.obs).astype(env.spec.obs_dtype).astype(np.float32)  # as the replay buffer keeps it
    np.testing.assert_array_equal(stored, ts.obs)
    # No food left next to either agent: load is masked; every move is free.
    np.testing.assert_array_equal(ts.avail, [[True] * 5 + [False]] * 2)


def test_lbf_loading_alone_eats_nothing():
    """Agent 0 (level 1) loads the level-3 food alone: nothing is eaten, no reward, no end."""
    env = make("LevelBasedForaging-v0", time_limit=10)
    _, ts = jax.jit(env.step)(jax.random.key(0), lbf_state(0), jnp.array([LOAD, NOOP], jnp.int32))
    assert float(ts.reward) == 0.0 and not bool(ts.terminated) and not bool(ts.truncated)
    np.testing.assert_array_equal(ts.obs[0, :3], [2, 3, 3])  # the food, still there


@pytest.mark.slow  # 7 s
def test_rware_steps_as_jumanji_and_a_collision_is_terminal():
    """A random episode of RWARE: views, masks and the shared reward as Jumanji's; it ends before
    the 500-step limit when two robots collide: LAST with discount 0, terminated."""
    env = make("RobotWarehouse-v0")
    rows = play_both(env, 0, random_actions)
    for ts, raw_ts, _ in rows:
        assert_same_views(ts, raw_ts, 4)
        assert np.shape(raw_ts.reward) == ()
        assert float(ts.reward) == float(raw_ts.reward)
        assert bool(ts.terminated) == (int(raw_ts.step_type) == LAST)
    ts, raw_ts, _ = rows[-1]
    assert len(rows) - 1 < 500 and float(raw_ts.discount) == 0.0
    assert bool(ts.terminated) and not bool(ts.truncated)


def test_rware_time_limit_is_a_truncation_though_jumanji_calls_it_a_termination():
    """Robots that only turn never move nor collide: at `time_limit` = 20 Jumanji ends the episode
    with discount 0 (`termination`), yet it was cut: ours is truncated."""
    env = make("RobotWarehouse-v0", time_limit=20)
    rows = play_both(env, 0, lambda rng, avail: np.full(4, TURN_LEFT, np.int32))
    assert len(rows) == 21
    for ts, _, _ in rows[:-1]:
        assert not bool(ts.terminated) and not bool(ts.truncated) and float(ts.reward) == 0.0
    ts, raw_ts, _ = rows[-1]
    assert int(raw_ts.step_type) == LAST and float(raw_ts.discount) == 0.0
    assert bool(ts.truncated) and not bool(ts.terminated)


@pytest.mark.parametrize("env_id, kwargs", [
    ("LevelBasedForaging-v0", {}),
    pytest.param("RobotWarehouse-v0", {"time_limit": 50}, marks=pytest.mark.slow),  # 10 s
])
def test_reset_and_step_jit_and_vmap(env_id, kwargs):
    """Three envs vmapped under jit give what each gives alone."""
    env = make(env_id, **kwargs)
    n = env.spec.num_agents
    keys = jax.random.split(jax.random.key(1), 3)
    states, ts = jax.jit(jax.vmap(env.reset))(keys)
    assert ts.obs.shape == (3, n, env.spec.obs_dim) and ts.state.shape == (3, env.spec.state_dim)
    assert ts.avail.shape == (3, n, env.spec.num_actions) and ts.reward.shape == (3,)
    actions = jnp.zeros((3, n), jnp.int32).at[:, 0].set(1)
    _, batched = jax.jit(jax.vmap(env.step))(keys, states, actions)
    for i in range(3):
        state, _ = env.reset(keys[i])
        _, alone = env.step(keys[i], state, actions[i])
        for field in ("obs", "state", "avail", "reward", "terminated", "truncated"):
            np.testing.assert_array_equal(getattr(batched, field)[i], getattr(alone, field))


@pytest.mark.parametrize("env_id, valid", [
    ("Snake-v1", "is not a multi-agent env with one discrete action per agent (its action spec is a DiscreteArray"),
    ("SearchAndRescue-v0", "has continuous actions (a float32 BoundedArray of shape (2, 2))"),
    ("Connector-v3", "its observation has no per-agent view (one grid shared by all agents)"),
])
def test_envs_wqmix_cannot_take_are_refused_in_one_line_naming_env_id(env_id, valid):
    with pytest.raises(ConfigError) as raised:
        JumanjiConfig(id=env_id).make()
    message = str(raised.value)
    assert message.startswith(f"env.id = '{env_id}' is invalid: {valid}") and "\n" not in message


def test_refusal_comes_before_anything_runs():
    """A single-agent env is refused from its action spec alone: its reset is never traced."""
    raw = jumanji.make("Snake-v1")

    def reset(key):
        raise AssertionError("reset was called")

    raw.reset = reset
    with pytest.raises(ConfigError, match=r"^env.id = 'Snake' is invalid: is not a multi-agent env"):
        JumanjiEnv(raw, where="env.id")


def test_unknown_id_is_refused_by_validate():
    with pytest.raises(ConfigError) as raised:
        JumanjiConfig(id="NoSuchEnv-v0").validate("env")
    message = str(raised.value)
    assert message.startswith("env.id = 'NoSuchEnv-v0' is invalid: must be a Jumanji env id: ")
    assert "LevelBasedForaging-v0" in message and "\n" not in message


def test_the_config_path_makes_the_env_with_its_kwargs():
    config = cfg.validate(cfg.with_env(cfg.Config(), "jumanji"))
    env = config.env.make()
    assert isinstance(env, JumanjiEnv) and env.spec.num_agents == 2 and env.spec.time_limit == 100
    config = cfg.validate(cfg.apply_override(config, "env.kwargs", '{"time_limit": 25}'))
    assert config.env.make().spec.time_limit == 25
    config = cfg.validate(cfg.apply_override(config, "env.id", "RobotWarehouse-v0"))
    assert config.env.make().spec[:5] == (4, 66, 264, 5, 25)
    with pytest.raises(ConfigError, match=r"^env.kwargs = '\[25\]' is invalid: must be a JSON object"):
        cfg.validate(cfg.apply_override(config, "env.kwargs", "[25]"))


@pytest.mark.slow  # 10 s
def test_the_generator_sets_the_layout():
    """LBF on a 6x6 grid with 3 agents and 1 food: views of 3 * (3 + 1) = 12 values per agent; the
    settings not given are the default generator's (max level 2, cooperation forced). RWARE with 2
    robots."""
    config = cfg.validate(cfg.with_env(cfg.Config(), "jumanji"))
    config = cfg.validate(cfg.apply_override(config, "env.generator",
                                             '{"grid_size": 6, "num_agents": 3, "num_food": 1, "fov": 6}'))
    env = config.env.make()
    assert env.spec[:4] == (3, 12, 36, 6) and env.env.grid_size == 6
    assert (env.env._generator.max_agent_level, env.env._generator.force_coop) == (2, True)
    assert check_env(env, num_episodes=1, max_steps=5) == []
    rware = JumanjiConfig(id="RobotWarehouse-v0", generator='{"num_agents": 2}').make()
    assert rware.spec[:4] == (2, 66, 132, 5)
    for field, text, valid in [("generator", '{"grid_size": 6}', "Field of view must be between 1 and grid_size"),
                               ("generator", '{"grid_sise": 6}', "TypeError: "),
                               ("kwargs", '{"time_limt": 5}', "TypeError: ")]:
        with pytest.raises(ConfigError) as raised:
            JumanjiConfig(**{field: text}).make()
        message = str(raised.value)
        assert message.startswith(f"env.{field} = ") and valid in message and "\n" not in message


@pytest.mark.slow  # 16 s; the host LBF and signalling runs train in CI
def test_trains_on_level_based_foraging(tmp_path):
    from wqmix.driver import train_run

    config = tiny_config("ow-qmix", total_env_steps=200, batch_size=4, buffer_size=8)
    config = cfg.validate(dataclasses.replace(config, env=JumanjiConfig(kwargs='{"time_limit": 20}')))
    summary = train_run(config, tmp_path)
    assert summary["env"] == "jumanji" and summary["total_env_steps"] >= 200
    (entry,) = summary["per_seed"]
    # LBF's normalised team return lies in [0, 1] (1: every food eaten).
    assert np.isfinite(entry["greedy_return"]) and 0.0 <= entry["greedy_return"] <= 1.0
    assert (tmp_path / "metrics.jsonl").read_text().strip()
