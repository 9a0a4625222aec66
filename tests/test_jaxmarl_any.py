"""Any env with JaxMARL's API (`--env jaxmarl --env.id ID`, `--env jax --env.factory F`), agents of
different shapes padded, and the one-line errors for envs wqmix cannot take."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wqmix import config as cfg
from wqmix.cli import main
from wqmix.envs.check import check_env
from wqmix.envs.jaxmarl_envs import JaxMarlApiEnv, from_jaxmarl
from wqmix.envs.padding import AgentShapes, stack_masks, stack_padded
from wqmix.envs.signalling import LEFT, RIGHT, STAY, SignallingGame
from wqmix.errors import ConfigError


def _env(name: str, **fields: str):
    config = cfg.with_env(cfg.Config(), name)
    for field, value in fields.items():
        config = cfg.apply_override(config, f"env.{field}", value)
    return cfg.validate(config).env.make()


def _signalling(**kwargs) -> JaxMarlApiEnv:
    return from_jaxmarl(SignallingGame(**kwargs), 0, "auto", "auto", field="env.factory", value="test")


def test_padding_by_hand():
    shapes = AgentShapes(("a", "b"), (2, 3), (3, 1))
    assert (shapes.obs_dim, shapes.num_actions) == (3, 3)
    np.testing.assert_array_equal(stack_padded([[1.0, 2.0], [[3.0], [4.0], [5.0]]], 3),
                                  [[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]])
    np.testing.assert_array_equal(stack_masks([[True, False, True], None], shapes),
                                  [[True, False, True], [True, False, False]])
    np.testing.assert_array_equal(shapes.real_actions(), [[True, True, True], [True, False, False]])
    assert shapes.padded() == ("observations padded to 3 with zeros: a (2)",
                               "actions padded to 3 with actions that are never available: b (1)")
    assert AgentShapes(("a", "b"), (2, 2), (3, 3)).padded() == ()


def test_two_agent_types_are_padded_and_mapped():
    env = _signalling(length=4, max_steps=8, step_cost=0.1)
    assert env.spec.num_agents == 2 and env.spec.obs_dim == 8 and env.spec.num_actions == 4
    assert env.spec.state_dim == 16 and env.spec.time_limit == 8  # no world_state: the padded obs
    assert env.padded == ("observations padded to 8 with zeros: speaker (4)",
                          "actions padded to 4 with actions that are never available: mover (3)")
    state, ts = env.reset(jax.random.key(3))
    goal, position = int(state[0].goal), int(state[0].position)
    np.testing.assert_array_equal(ts.obs[0], np.eye(4)[goal].tolist() + [0.0] * 4)  # speaker, zero-padded
    np.testing.assert_array_equal(ts.obs[1], np.eye(4)[position].tolist() + np.eye(4)[0].tolist())
    np.testing.assert_array_equal(ts.state, np.asarray(ts.obs).reshape(-1))
    assert ts.avail[0].tolist() == [True] * 4
    assert ts.avail[1].tolist() == [position > 0, True, position < 3, False]  # padded action never available


def _walk_to_goal(env, key):
    """Actions that take the mover to the goal and then stay; the speaker names the goal."""
    state, ts = env.reset(key)
    goal = int(state[0].goal)
    steps = []
    for _ in range(env.spec.time_limit):
        position = int(state[0].position)
        move = STAY if position == goal else (RIGHT if goal > position else LEFT)
        state, ts = env.step(jax.random.key(0), state, jnp.array([goal, move]))
        steps.append(ts)
        if ts.terminated or ts.truncated:
            break
    return goal, steps


def test_team_reward_is_the_sum_and_scoring_terminates():
    env = _signalling(length=4, max_steps=8, step_cost=0.1)
    for seed in range(4):
        goal, steps = _walk_to_goal(env, jax.random.key(seed))
        assert [bool(ts.terminated) for ts in steps] == [False] * (len(steps) - 1) + [True]
        assert not any(bool(ts.truncated) for ts in steps)
        # each step costs 0.1 (split 0.05 + 0.05 between the agents, summed); scoring adds 1
        np.testing.assert_allclose([float(ts.reward) for ts in steps], [-0.1] * (len(steps) - 1) + [0.9], rtol=1e-6)
        np.testing.assert_array_equal(steps[-1].obs[1][4:], np.eye(4)[goal])  # the mover read the word


def test_time_limit_truncates_not_terminates():
    env = _signalling(length=4, max_steps=8, step_cost=0.1)
    state, ts = env.reset(jax.random.key(0))
    flags = []
    for _ in range(8):  # always move left then keep moving left: never stays, never scores
        state, ts = env.step(jax.random.key(0), state, jnp.array([0, LEFT if int(state[0].position) > 0 else RIGHT]))
        flags.append((bool(ts.terminated), bool(ts.truncated)))
    assert flags == [(False, False)] * 7 + [(False, True)]
    shorter = from_jaxmarl(SignallingGame(max_steps=8), 3, "auto", "auto", field="env.factory", value="test")
    assert shorter.spec.time_limit == 3  # our limit cuts the env's own


def test_first_agent_reward_when_asked():
    env = from_jaxmarl(SignallingGame(step_cost=0.1), 0, "first", "auto", field="env.factory", value="test")
    state, _ = env.reset(jax.random.key(0))
    _, ts = env.step(jax.random.key(0), state, jnp.array([0, LEFT if int(state[0].goal) != int(state[0].position) else RIGHT]))
    np.testing.assert_allclose(float(ts.reward), -0.05, rtol=1e-6)  # the speaker's half of the step cost


@pytest.mark.parametrize("name, fields", [
    ("jax", {}),
    pytest.param("jaxmarl", {}, marks=pytest.mark.slow),  # 9 s; speaker-listener's raw comparison stays in CI
    pytest.param("jaxmarl", {"id": "switch_riddle"}, marks=pytest.mark.integration),  # real envs: integration
])
def test_check_env_passes(name, fields):
    assert check_env(_env(name, **fields)) == []


@pytest.mark.integration  # real jaxmarl envs
def test_speaker_listener_matches_the_raw_env():
    import jaxmarl

    env = _env("jaxmarl", id="MPE_simple_speaker_listener_v4")
    raw = jaxmarl.make("MPE_simple_speaker_listener_v4")
    assert env.padded == ("observations padded to 11 with zeros: speaker_0 (3)",
                          "actions padded to 5 with actions that are never available: speaker_0 (3)")
    key = jax.random.key(7)
    state, ts = env.reset(key)
    raw_obs, raw_state = raw.reset(key)
    for t in range(3):
        actions = jnp.array([t % 3, (t + 1) % 5])
        state, ts = env.step(jax.random.key(t), state, actions)
        raw_obs, raw_state, rewards, _, _ = raw.step_env(jax.random.key(t), raw_state,
                                                         {"speaker_0": actions[0], "listener_0": actions[1]})
        np.testing.assert_array_equal(ts.obs[0, :3], raw_obs["speaker_0"])
        np.testing.assert_array_equal(ts.obs[0, 3:], 0.0)
        np.testing.assert_array_equal(ts.obs[1], raw_obs["listener_0"])
        np.testing.assert_allclose(float(ts.reward), float(rewards["speaker_0"] + rewards["listener_0"]), rtol=1e-6)


@pytest.fixture(scope="module")
def signalling_rollout():
    from wqmix.cli import parse_train_args
    from wqmix.train import Trainer

    config, _, _ = parse_train_args(["--env", "jax", "--algo", "qmix", "--network.agent-hidden", "8"])
    trainer = Trainer(config)
    params = trainer.init(jax.random.key(0)).learner.params["agent"]
    rollout = jax.jit(lambda key, epsilon: trainer.rollout(key, params, epsilon, 4)[0])
    return trainer, rollout


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), epsilon=st.sampled_from([0.0, 0.3, 1.0]))
def test_agents_never_take_a_padded_action(signalling_rollout, seed, epsilon):
    _, rollout = signalling_rollout
    episodes = jax.device_get(rollout(jax.random.key(seed), jnp.float32(epsilon)))
    filled = np.asarray(episodes.filled)  # (E, T)
    actions = np.asarray(episodes.actions)[filled]  # (steps, agents)
    avail = np.asarray(episodes.avail)[:, :-1][filled]  # (steps, agents, actions): where each action was taken
    assert actions[:, 1].max() < 3  # the mover has 3 actions; 3 is padding
    assert avail[np.arange(len(actions))[:, None], np.arange(2)[None], actions].all()  # only available ones


@pytest.mark.integration  # real jaxmarl envs
def test_one_line_errors_before_any_compile():
    with pytest.raises(ConfigError, match=r"^env.id = 'nope' is invalid: must be a jaxmarl env id: MPE_simple_v3"):
        _env("jaxmarl", id="nope")
    with pytest.raises(ConfigError, match=r"^env.id = 'MPE_simple_v3' is invalid: agent 'agent_0' has a continuous"):
        _env("jaxmarl", id="MPE_simple_v3", kwargs='{"action_type": "Continuous"}')
    with pytest.raises(ConfigError, match=r"^env.factory = 'wqmix.envs.configs:MatrixGameConfig' is invalid: "
                                          r"returned a MatrixGameConfig, which is neither"):
        _env("jax", factory="wqmix.envs.configs:MatrixGameConfig")
    with pytest.raises(ConfigError, match=r"^env.time_limit = 0 is invalid: hanabi has no max_steps"):
        _env("jaxmarl", id="hanabi")
    with pytest.raises(ConfigError, match=r"^env.kwargs = '\{' is invalid: must be a JSON object"):
        _env("jaxmarl", kwargs="{")
    with pytest.raises(ConfigError, match=r"^env.factory = 'no_such_module:make' is invalid: cannot import"):
        _env("jax", factory="no_such_module:make")


def test_the_factory_takes_a_wqmix_environment_as_it_is():
    env = _env("jax", factory="wqmix.envs.matrix_game:MatrixGame",
               kwargs=json.dumps({"payoff": [[1.0, 0.0], [0.0, 1.0]], "state_dim": 3}))
    from wqmix.envs.matrix_game import MatrixGame

    assert isinstance(env, MatrixGame) and env.spec.num_actions == 2


@pytest.mark.integration
def test_trains_from_the_cli(tmp_path, capsys):
    status = main(["train", "--env", "jax", "--algo", "vdn", "--train.total-env-steps", "400",
                   "--train.batch-size", "4", "--network.agent-hidden", "8", "--log.num-chunks", "2",
                   "--log.test-episodes", "3", "--quiet", "--out", str(tmp_path)])
    assert status == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["env"] == "jax" and np.isfinite(summary["per_seed"][0]["greedy_return"])
    assert main(["check-env", "jax"]) == 0
    assert "padded: actions padded to 4 with actions that are never available: mover (3)" in capsys.readouterr().out


def test_the_example_env_passes_check_env(monkeypatch, capsys):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "examples"))
    assert main(["check-env", "jax", "--env.factory", "jax_custom_env:MeetingEnv"]) == 0
    assert "jax: OK (agents 2, obs 10, state 10, actions 3, time limit 10)" in capsys.readouterr().out


@pytest.mark.integration  # real jaxmarl envs
def test_a_buffer_larger_than_memory_is_refused_before_compiling(monkeypatch, capfd):
    """Overcooked's 5000 default episodes take 16.7 GB; with 10 GB available that is refused in one
    line, with 20 GB it is a warning."""
    from wqmix import driver
    from wqmix.cli import parse_train_args
    from wqmix.train import Trainer

    config, _, _ = parse_train_args(["--env", "jaxmarl", "--env.id", "overcooked"])
    trainer = Trainer(config)
    monkeypatch.setattr(driver, "available_bytes", lambda: 10 * 10**9)
    with pytest.raises(ConfigError, match=r"^train.buffer_size = 5000 is invalid: the replay buffer would take "
                                          r"16.7 GB \(1 seed\(s\) x 5000 episodes of up to 400 steps, obs 2 x 520"):
        driver.refuse_a_buffer_that_cannot_fit(trainer)
    monkeypatch.setattr(driver, "available_bytes", lambda: 20 * 10**9)
    driver.refuse_a_buffer_that_cannot_fit(trainer)
    assert "warning: the replay buffer will take 16.7 GB of the 20.0 GB" in capfd.readouterr().err
