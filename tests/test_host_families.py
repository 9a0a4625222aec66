"""The host-stepped env families a user brings: Gymnasium multi-agent envs (`--env gym`: LBF,
RWARE and a fake with agents of different shapes) and envs with SMAC's API (`--env smac-api`:
the built-in `CountingGame` and fakes)."""

import dataclasses
import json

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from wqmix import config as cfg
from wqmix.envs.base import EnvSpec
from wqmix.envs.check import check_env
from wqmix.envs.gym_env import GymMultiAgentEnv, make_gym
from wqmix.envs.smac_api import CountingGame, SmacApiEnv
from wqmix.envs.user_configs import GymConfig, SmacApiConfig
from wqmix.errors import ConfigError

LBF = "Foraging-5x5-2p-1f-v3"  # 5x5 grid, 2 players, 1 food; ends itself when the food is taken
NONE, LOAD = 0, 5  # lbforaging's Action.NONE and Action.LOAD


# ------------------------------------------------------------------------------------------
# Fake Gymnasium envs, registered under test ids (reached with the "module:id" form)


class UnevenEnv(gymnasium.Env):
    """Two agents of different shapes. Agent 0 sees 3 numbers [t, 1, 2] and has 2 actions; agent
    1 sees a 2x2 grid [[t, 3], [4, 5]] and has 4 actions, of which its info mask forbids action 3.
    Rewards: [a0, 10 * a1]. Terminates (a per-agent list, as some envs give) when both agents
    take action 1; otherwise ends itself at `max_steps` with terminated true, as LBF and RWARE do."""

    def __init__(self, max_steps=4):
        self.max_steps = max_steps
        self.observation_space = spaces.Tuple((spaces.Box(-10, 10, (3,), np.float32),
                                               spaces.Box(-10, 10, (2, 2), np.float32)))
        self.action_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(4)))
        self.t = 0

    def _obs(self):
        return (np.array([self.t, 1, 2], np.float32), np.array([[self.t, 3], [4, 5]], np.float32))

    def _info(self):
        return {"action_mask": [np.array([1, 1], np.int8), np.array([1, 1, 1, 0], np.int8)]}

    def reset(self, seed=None, options=None):
        self.t = 0
        return self._obs(), self._info()

    def step(self, actions):
        if actions[1] == 3:
            raise ValueError("agent 1 cannot take action 3 (its mask says so)")
        self.t += 1
        rewards = [float(actions[0]), 10.0 * actions[1]]
        done = (actions[0] == 1 and actions[1] == 1) or (self.max_steps is not None and self.t >= self.max_steps)
        return self._obs(), rewards, [done, done], False, self._info()


class ContinuousEnv(UnevenEnv):
    def __init__(self):
        super().__init__()
        self.action_space = spaces.Tuple((spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (2,))))


UNEVEN = "test_host_families:wqmix-test/Uneven-v0"
CONTINUOUS = "test_host_families:wqmix-test/Continuous-v0"
gymnasium.register(id="wqmix-test/Uneven-v0", entry_point=UnevenEnv)
gymnasium.register(id="wqmix-test/Continuous-v0", entry_point=ContinuousEnv)


# ------------------------------------------------------------------------------------------
# Gymnasium: LBF and RWARE


@pytest.mark.integration  # a real env
def test_lbf_passes_check_env_and_its_spec_matches_its_spaces():
    env = make_gym("Foraging-8x8-2p-3f-v3", {}, 0)
    assert check_env(env) == []  # no error, no warning (same seed, same episode)
    raw = env.env
    obs_size = int(np.prod(raw.observation_space[0].shape))
    assert obs_size == 15  # food (row, col, level) x 3, then player (row, col, level) x 2
    assert env.spec.num_agents == 2 and env.spec.obs_dim == obs_size and env.spec.state_dim == 2 * obs_size
    assert env.spec.num_actions == raw.action_space[0].n == 6
    assert env.padded == ()  # both agents alike
    ts = env.reset(seed=3)
    np.testing.assert_array_equal(ts.state, ts.obs.reshape(-1))  # no global state: observations concatenated
    assert ts.avail.all() and ts.alive.all() and not ts.won  # LBF gives no masks: every action available


@pytest.mark.integration  # a real env
def test_lbf_time_limit_is_its_own_and_its_limit_is_a_truncation():
    env = make_gym(LBF, {}, 0)
    assert env.spec.time_limit == env.env.unwrapped._max_episode_steps == 50  # lbforaging's registration
    env.reset(seed=0)
    for t in range(1, 51):  # nobody loads: the food stays, and LBF says terminated at step 50
        ts = env.step(np.array([NONE, NONE]))
        assert bool(ts.truncated) == (t == 50) and not ts.terminated, t
    # Our own cut, shorter than the env's: truncated too.
    short = make_gym(LBF, {}, 2)
    assert short.spec.time_limit == 2
    short.reset(seed=0)
    assert not short.step(np.array([NONE, NONE])).truncated
    ts = short.step(np.array([NONE, NONE]))
    assert ts.truncated and not ts.terminated


@pytest.mark.integration  # a real env
def test_lbf_max_episode_steps_in_kwargs_is_gymnasiums_time_limit():
    """`gymnasium.make` takes `max_episode_steps` itself: a TimeLimit that truncates at 3."""
    env = make_gym(LBF, {"max_episode_steps": 3}, 0)
    assert env.spec.time_limit == 3 and env.env.unwrapped._max_episode_steps == 50
    env.reset(seed=0)
    flags = [(bool(ts.terminated), bool(ts.truncated)) for ts in (env.step(np.array([NONE, NONE]))
                                                                     for _ in range(3))]
    assert flags == [(False, False), (False, False), (False, True)]


@pytest.mark.integration  # a real env
def test_lbf_team_reward_is_the_sum_and_taking_the_last_food_terminates():
    """Seed 17: the food (level 1) is at (2, 1), agent 1 (level 2) at (2, 2) next to it; agent 1
    loads it alone: its reward is level * food / (loading levels * food spawned) = 2 * 1 / (2 * 1)
    = 1, agent 0's 0, and the field is empty, so the episode ends for real."""
    env = make_gym(LBF, {}, 0)
    raw = gymnasium.make(LBF, disable_env_checker=True)
    ts = env.reset(seed=17)
    raw_obs, _ = raw.reset(seed=17)
    np.testing.assert_array_equal(ts.obs, np.stack(raw_obs))
    np.testing.assert_array_equal(ts.obs[0], [2, 1, 1, 4, 0, 1, 2, 2, 2])
    ts = env.step(np.array([NONE, LOAD]))
    raw_obs, raw_rewards, raw_done, _, _ = raw.step([NONE, LOAD])
    assert raw_rewards == [0, 1.0] and raw_done
    assert ts.reward == np.float32(sum(raw_rewards)) == 1.0  # the sum (the mean would be 0.5)
    assert ts.terminated and not ts.truncated and not ts.won
    np.testing.assert_array_equal(ts.obs, np.stack(raw_obs))


@pytest.mark.integration  # a real env
def test_lbf_team_reward_follows_the_raw_env_over_an_episode():
    """Random actions on the adapter and on a raw env with the same seed: every step's team
    reward is the sum of the raw per-agent rewards, and some step pays agent 1 alone."""
    env, raw = make_gym("Foraging-6x6-2p-2f-v3", {}, 0), gymnasium.make("Foraging-6x6-2p-2f-v3",
                                                                         disable_env_checker=True)
    env.reset(seed=10)
    raw.reset(seed=10)
    rng = np.random.default_rng(10)
    paid_agent_1_alone = False
    for _ in range(50):
        actions = rng.integers(0, 6, size=2)
        ts = env.step(actions)
        _, rewards, done, _, _ = raw.step([int(a) for a in actions])
        assert ts.reward == pytest.approx(rewards[0] + rewards[1], abs=1e-6)
        paid_agent_1_alone |= rewards[0] == 0 and rewards[1] != 0
        if done:
            break
    assert paid_agent_1_alone


@pytest.mark.integration  # a real env
def test_rware_passes_check_env_and_ends_at_its_max_steps():
    env = make_gym("rware-tiny-2ag-v2", {}, 0)
    assert env.spec.time_limit == env.env.unwrapped.max_steps == 500  # rware's registration
    assert env.spec.num_actions == 5 and env.spec.obs_dim == 71
    assert check_env(env, num_episodes=1, max_steps=20) == []
    short = make_gym("rware-tiny-2ag-v2", {"max_steps": 2}, 0)  # rware's own limit: it says terminated
    assert short.spec.time_limit == 2
    short.reset(seed=0)
    short.step(np.array([0, 0]))
    ts = short.step(np.array([0, 0]))
    assert ts.truncated and not ts.terminated


# ------------------------------------------------------------------------------------------
# Gymnasium: agents of different shapes


def test_agents_of_different_shapes_are_padded():
    env = make_gym(UNEVEN, {}, 0)
    assert isinstance(env, GymMultiAgentEnv)
    assert env.spec.obs_dim == 4 and env.spec.num_actions == 4 and env.spec.state_dim == 8
    assert env.spec.time_limit == 4  # the fake's max_steps
    assert env.padded == ("observations padded to 4 with zeros: agent_0 (3)",
                          "actions padded to 4 with actions that are never available: agent_0 (2)")
    ts = env.reset(seed=0)
    np.testing.assert_array_equal(ts.obs, [[0, 1, 2, 0], [0, 3, 4, 5]])  # agent 0 padded with a zero
    np.testing.assert_array_equal(ts.avail, [[1, 1, 0, 0], [1, 1, 1, 0]])  # padding, and agent 1's mask
    np.testing.assert_array_equal(ts.state, [0, 1, 2, 0, 0, 3, 4, 5])
    ts = env.step(np.array([1, 2]))
    assert ts.reward == 1 + 10 * 2 and not ts.terminated and not ts.truncated
    np.testing.assert_array_equal(ts.obs, [[1, 1, 2, 0], [1, 3, 4, 5]])
    with pytest.raises(ValueError, match="agent 0 took action 3; it has 2"):
        env.step(np.array([3, 0]))  # a padded action
    assert check_env(env) == []


def test_a_per_agent_terminated_list_ends_the_episode_and_the_own_limit_truncates():
    env = make_gym(UNEVEN, {}, 0)
    env.reset(seed=0)
    ts = env.step(np.array([1, 1]))  # both take action 1: the env terminates, [True, True]
    assert ts.terminated and not ts.truncated and ts.reward == 11
    env.reset(seed=0)
    flags = [(bool(ts.terminated), bool(ts.truncated)) for ts in (env.step(np.array([0, 0])) for _ in range(4))]
    assert flags == [(False, False)] * 3 + [(False, True)]  # terminated at max_steps: a cut


def test_an_env_without_a_limit_needs_one():
    with pytest.raises(ConfigError, match=r"^env.time_limit = 0 is invalid: .* sets no episode limit"):
        make_gym(UNEVEN, {"max_steps": None}, 0)
    assert make_gym(UNEVEN, {"max_steps": None}, 7).spec.time_limit == 7


# ------------------------------------------------------------------------------------------
# Gymnasium: bad input, one line naming the field


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_bad_gym_envs_fail_with_one_line_naming_env_id():
    with pytest.raises(ConfigError) as error:
        make_gym("CartPole-v1", {}, 0)
    assert one_line(error) == ("env.id = 'CartPole-v1' is invalid: has observation space Box(shape (4,)); wqmix "
                               "needs a gymnasium.spaces.Tuple with one Box per agent (as lbforaging's and rware's)")
    with pytest.raises(ConfigError) as error:
        make_gym("Foraging-8x8-2p-3f-v2", {}, 0)  # lbforaging 2.0 registers v3
    assert one_line(error).startswith("env.id = 'Foraging-8x8-2p-3f-v2' is invalid: is not a registered Gymnasium "
                                      "id (similar registered ids: Foraging-8x8-2p-3f-v3")
    with pytest.raises(ConfigError) as error:
        make_gym(CONTINUOUS, {}, 0)
    assert one_line(error).startswith(f"env.id = '{CONTINUOUS}' is invalid: has action space Tuple(Box(shape "
                                      "(2,)), Box(shape (2,))) (continuous actions are not supported)")
    with pytest.raises(ConfigError) as error:
        make_gym("no_such_package:Thing-v0", {}, 0)
    assert one_line(error).startswith("env.id = 'no_such_package:Thing-v0' is invalid: cannot import")
    with pytest.raises(ConfigError) as error:
        make_gym(LBF, {"no_such_argument": 1}, 0)
    assert one_line(error).startswith("env.kwargs = {'no_such_argument': 1} is invalid: ForagingEnv.__init__() got "
                                      "an unexpected keyword argument")


# ------------------------------------------------------------------------------------------
# SMAC's API


def test_counting_game_passes_check_env():
    env = SmacApiEnv(CountingGame())
    assert check_env(env, num_episodes=3) == []  # deterministic: seed(s) restarts its targets
    assert env.reports_wins
    # get_env_info: obs 6 + 1, state 6 + 2; no per-unit state layout declared.
    assert env.spec == EnvSpec(2, 7, 8, 3, 6, np.float32, np.float32, state_unit_dim=None)


def test_smac_api_win_avail_and_episode_limit():
    """Target 3 (min = max = 3), agents add 0, 1 or 2 to a shared counter."""
    env = SmacApiEnv(CountingGame(min_target=3, max_target=3, episode_limit=2))
    ts = env.reset(seed=0)
    np.testing.assert_array_equal(ts.avail, np.ones((2, 3), bool))  # 3 remain: every add is available
    np.testing.assert_array_equal(ts.obs, [[0, 0, 0, 1]] * 2)  # remaining 3, one-hot
    ts = env.step(np.array([1, 1]))  # 1 remains: adding 2 is unavailable to each agent
    np.testing.assert_array_equal(ts.avail, [[1, 1, 0], [1, 1, 0]])
    np.testing.assert_allclose(ts.state, [0, 1, 0, 0, 2 / 3], rtol=1e-6)  # remaining 1, counter 2 of 3
    assert ts.reward == 0 and not (ts.terminated or ts.truncated or ts.won)
    ts = env.step(np.array([1, 0]))  # exactly 3: battle_won
    assert ts.won and ts.terminated and not ts.truncated and ts.reward == 1
    env.reset(seed=0)
    env.step(np.array([0, 0]))
    ts = env.step(np.array([0, 0]))  # step 2 = episode_limit: the game sets info["episode_limit"]
    assert ts.truncated and not ts.terminated and not ts.won
    env.reset(seed=0)
    ts = env.step(np.array([2, 2]))  # 4 > 3: lost
    assert ts.terminated and not ts.truncated and not ts.won and ts.reward == 0


class NeverEnds:
    """SMAC's API without episode ends; its `seed()` takes no argument, as SMAC's."""

    def __init__(self):
        self.t, self.seeded = 0, False

    def get_env_info(self):
        return {"n_agents": 2, "n_actions": 2, "obs_shape": 1, "state_shape": 1, "episode_limit": 3}

    def seed(self):
        self.seeded = True
        return 0

    def reset(self):
        self.t = 0

    def get_obs(self):
        return [np.array([self.t]), np.array([-self.t])]

    def get_state(self):
        return [self.t]

    def get_avail_actions(self):
        return [[1, 0], [1, 1]]

    def step(self, actions):
        self.t += 1
        return 0.5, False, {}


class NotSmac:
    def reset(self):
        pass

    def step(self, actions):
        return 0.0, False, {}


def make_not_smac():
    return NotSmac()


def test_our_cut_at_episode_limit_and_an_argumentless_seed():
    env = SmacApiEnv(NeverEnds())
    ts = env.reset(seed=5)
    assert not env.env.seeded  # SMAC's seed() only returns its seed: not called
    np.testing.assert_array_equal(ts.avail, [[True, False], [True, True]])
    flags = [(bool(ts.truncated), bool(ts.terminated)) for ts in (env.step(np.array([0, 1])) for _ in range(3))]
    assert flags == [(False, False), (False, False), (True, False)]
    assert check_env(env) == []


def test_an_object_without_smacs_api_fails_naming_env_factory():
    with pytest.raises(ConfigError) as error:
        SmacApiConfig(factory="test_host_families:make_not_smac").make()
    assert one_line(error) == ("env.factory = 'test_host_families:make_not_smac' is invalid: gave a NotSmac, which "
                               "lacks SMAC's MultiAgentEnv method(s) get_env_info, get_obs, get_state, "
                               "get_avail_actions (needs get_env_info, reset, step, get_obs, get_state, "
                               "get_avail_actions)")


# ------------------------------------------------------------------------------------------
# The CLI path: configs, overrides, make


def test_the_configs_validate_and_make():
    gym = cfg.validate(cfg.with_env(cfg.Config(), "gym")).env
    assert isinstance(gym, GymConfig)
    env = gym.make()
    assert isinstance(env, GymMultiAgentEnv) and env.spec.time_limit == 50 and env.spec.num_agents == 2
    smac = cfg.validate(cfg.with_env(cfg.Config(), "smac-api")).env
    env = smac.make()
    assert isinstance(env, SmacApiEnv) and isinstance(env.env, CountingGame) and env.reports_wins
    config = cfg.apply_override(cfg.with_env(cfg.Config(), "smac-api"), "env.kwargs", '{"n_agents": 3}')
    assert cfg.validate(config).env.make().spec.num_agents == 3


@pytest.mark.parametrize("family", ["gym", "smac-api"])
def test_kwargs_that_are_not_json_fail_in_one_line(family):
    config = cfg.apply_override(cfg.with_env(cfg.Config(), family), "env.kwargs", "{max_steps: 5}")
    with pytest.raises(ConfigError) as error:
        cfg.validate(config)
    assert one_line(error).startswith("env.kwargs = '{max_steps: 5}' is invalid: must be a JSON object")


# ------------------------------------------------------------------------------------------
# Short training runs


def short_run(tiny, env, tmp_path, steps):
    from wqmix.driver import train_run

    config = tiny("qmix", total_env_steps=steps)
    config = cfg.validate(dataclasses.replace(config, env=env,
                                              log=dataclasses.replace(config.log, test_episodes=2)))
    return train_run(config, tmp_path)


@pytest.mark.integration
def test_trains_on_lbf(tiny, tmp_path):
    summary = short_run(tiny, GymConfig(id=LBF, time_limit=10), tmp_path, 200)
    assert summary["total_env_steps"] >= 200
    (entry,) = summary["per_seed"]
    assert np.isfinite(entry["greedy_return"]) and 0 <= entry["greedy_return"] <= 1  # LBF's normalised return
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["updates"] > 0


@pytest.mark.integration
def test_trains_on_the_counting_game(tiny, tmp_path):
    summary = short_run(tiny, SmacApiConfig(), tmp_path, 300)
    (entry,) = summary["per_seed"]
    assert np.isfinite(entry["greedy_return"]) and 0 <= entry["greedy_return"] <= 1
    assert 0 <= entry["test_win_rate"] <= 1  # reports_wins: win rates are logged
