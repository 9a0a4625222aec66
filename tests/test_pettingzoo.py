"""The PettingZoo adapter: masks, state, agents that leave early, and training from the CLI."""

import json

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import ParallelEnv

from wqmix.cli import main
from wqmix.envs.configs import PettingZooConfig
from wqmix.envs.pettingzoo_env import PettingZooEnv
from wqmix.errors import ConfigError

pytestmark = pytest.mark.integration  # a Python env package, worker processes, training runs


class LeavingEnv(ParallelEnv):
    """3 agents, 3 actions. Agent "c" terminates after the first step and leaves; the others go
    on until step 4 (truncation). Reward = number of agents that chose action 1. Agent "b" gets
    an action mask in its info that forbids action 2. Observation: [step, slot, 1, 1]."""

    metadata = {"name": "leaving_v0"}

    def __init__(self, with_state: bool = True, leaky: bool = False):
        self.possible_agents = ["a", "b", "c"]
        self.with_state = with_state
        self.t = 0
        self.leaky, self.resets = leaky, 0  # leaky: the last observation entry counts resets mod 2

    def observation_space(self, agent):
        return spaces.Box(-10, 10, (4,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(3)

    def _obs(self):
        last = 1 + self.resets % 2 if self.leaky else 1
        return {a: np.array([self.t, self.possible_agents.index(a), 1, last], np.float32) for a in self.agents}

    def _infos(self):
        return {a: ({"action_mask": np.array([1, 1, 0], np.int8)} if a == "b" else {}) for a in self.agents}

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.t = 0
        self.resets += 1
        return self._obs(), self._infos()

    def state(self):
        if not self.with_state:
            raise NotImplementedError
        return np.array([self.t, len(self.agents)], np.float32)

    def step(self, actions):
        assert set(actions) == set(self.agents), (actions, self.agents)
        self.t += 1
        rewards = {a: float(actions[a] == 1) for a in self.agents}
        terminations = {a: a == "c" for a in self.agents}
        truncations = {a: self.t >= 4 for a in self.agents}
        obs, infos = self._obs(), self._infos()
        self.agents = [a for a in self.agents if not terminations[a] and not truncations[a]]
        return obs, rewards, terminations, truncations, infos


def make_leaving_env(with_state: bool = True, leaky: bool = False):
    return LeavingEnv(with_state, leaky)


class MaskedObsEnv(LeavingEnv):
    """Same, with the mask inside a dict observation."""

    def observation_space(self, agent):
        return spaces.Dict({"observation": spaces.Box(-10, 10, (4,), np.float32),
                            "action_mask": spaces.MultiBinary(3)})

    def _obs(self):
        return {a: {"observation": o, "action_mask": np.array([0, 1, 1], np.int8)} for a, o in super()._obs().items()}

    def _infos(self):
        return {a: {} for a in self.agents}


def test_spec_state_and_masks_from_info():
    env = PettingZooEnv(LeavingEnv(), time_limit=6)
    assert env.spec.num_agents == 3 and env.spec.obs_dim == 4 and env.spec.num_actions == 3
    assert env.spec.state_dim == 2  # env.state()
    ts = env.reset(seed=1)
    np.testing.assert_array_equal(ts.obs[2], [0, 2, 1, 1])
    np.testing.assert_array_equal(ts.avail, [[1, 1, 1], [1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(ts.state, [0, 3])
    assert ts.alive.all() and not ts.terminated and not ts.truncated


def test_agents_that_leave_keep_their_slot():
    env = PettingZooEnv(LeavingEnv(), time_limit=6, noop_action=0)
    env.reset(seed=0)
    ts = env.step(np.array([1, 1, 1]))
    assert ts.reward == 3.0
    np.testing.assert_array_equal(ts.alive, [True, True, False])
    np.testing.assert_array_equal(ts.obs[2], np.zeros(4))  # agent c left: zero observation
    np.testing.assert_array_equal(ts.avail[2], [True, False, False])  # only the no-op
    ts = env.step(np.array([1, 0, 2]))  # c's action is ignored: it is no longer in the env
    assert ts.reward == 1.0 and not ts.terminated and not ts.truncated
    env.step(np.array([0, 0, 0]))
    ts = env.step(np.array([0, 0, 0]))
    # Cut by the env's time limit: truncated, and the truncated agents still take part.
    assert ts.truncated and not ts.terminated
    np.testing.assert_array_equal(ts.alive, [True, True, False])


def test_state_falls_back_to_observations_and_masks_from_obs_dict():
    env = PettingZooEnv(MaskedObsEnv(with_state=False), time_limit=6)
    assert env.spec.state_dim == 3 * 4
    ts = env.reset(seed=0)
    np.testing.assert_array_equal(ts.state, ts.obs.reshape(-1))
    np.testing.assert_array_equal(ts.avail, [[0, 1, 1]] * 3)


def test_our_time_limit_cuts_long_episodes():
    env = PettingZooEnv(LeavingEnv(), time_limit=2)
    env.reset(seed=0)
    assert not env.step(np.array([0, 0, 0])).truncated
    ts = env.step(np.array([0, 0, 0]))
    assert ts.truncated and not ts.terminated


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"^env.factory = 'nosuchpkg.mod:make' is invalid: cannot import 'nosuchpkg'"):
        PettingZooConfig(factory="nosuchpkg.mod:make").validate("env")
    with pytest.raises(ConfigError, match=r"^env.factory = 'json' is invalid: must look like"):
        PettingZooConfig(factory="json").validate("env")
    with pytest.raises(ConfigError, match=r"^env.kwargs = '\[1\]' is invalid: must be a JSON object"):
        PettingZooConfig(kwargs="[1]").validate("env")


TINY = ["--train.batch-size", "4", "--train.buffer-size", "8", "--network.agent-hidden", "8",
        "--network.mixer-embed", "4", "--network.hypernet-embed", "8", "--network.central-agent-hidden", "8",
        "--network.central-mixer-hidden", "16", "--log.num-chunks", "2", "--log.test-episodes", "3", "--quiet"]


def test_trains_a_pettingzoo_package_env_from_the_cli(tmp_path):
    """MPE simple_spread from the `mpe2` package: 2 seeds x 2 envs stepped on the host."""
    status = main(["train", "--env", "pettingzoo", "--algo", "ow-qmix", "--train.total-env-steps", "200",
                   "--train.num-envs", "2", "--num-seeds", "2", "--out", str(tmp_path), *TINY])
    assert status == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["env"] == "pettingzoo" and summary["total_env_steps"] >= 200
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["episodes"] == 8 and rows[-1]["updates"] > 0  # 25-step episodes, 2 per iteration
    for entry in summary["per_seed"]:
        assert entry["test_episodes"] == 3 and np.isfinite(entry["greedy_return"])


def test_trains_an_env_whose_agents_leave_and_whose_reset_leaks_state(tmp_path, capsys):
    status = main(["train", "--env", "pettingzoo", "--env.factory", "test_pettingzoo:make_leaving_env",
                   "--env.kwargs", '{"leaky": true}', "--env.time-limit", "6", "--algo", "iql",
                   "--train.total-env-steps", "60", "--out", str(tmp_path), *TINY])
    assert status == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    # Each episode: 4 steps; the greedy return is the count of "1" choices, at most 3 + 2 + 2 + 2.
    assert 0 <= summary["per_seed"][0]["greedy_return"] <= 9
    # Two resets with one seed differ: a warning, printed and recorded, not a refusal.
    (warning,) = json.loads((tmp_path / "meta.json").read_text())["env_check"]["warnings"]
    assert warning.startswith("determinism: two resets with seed 0 followed by the same actions gave different "
                              "time steps at reset: obs at agent 0, index 3 (")
    assert "warning: pettingzoo: determinism: two resets" in capsys.readouterr().err  # printed, even --quiet
    # Strict: the same env is refused before anything is compiled.
    assert main(["train", "--env", "pettingzoo", "--env.factory", "test_pettingzoo:make_leaving_env",
                 "--env.kwargs", '{"leaky": true}', "--env.time-limit", "6", "--algo", "iql",
                 "--train.env-check", "strict", "--out", str(tmp_path / "strict"), *TINY]) == 2
    assert "determinism: two resets" in capsys.readouterr().err


def test_warm_up_compiles_acting_and_absorbing_before_training():
    import jax
    import jax.numpy as jnp

    from wqmix.cli import parse_train_args
    from wqmix.host_rollout import HostRunner
    from wqmix.train import Trainer, seed_keys

    config, _, _ = parse_train_args(["--env", "pettingzoo", "--env.factory", "test_pettingzoo:make_leaving_env",
                                     "--env.kwargs", "{}", "--env.time-limit", "6", "--algo", "vdn",
                                     "--train.num-envs", "2", *TINY])
    trainer = Trainer(config)
    runner = HostRunner(trainer, config.env.make, 1)
    states = jax.vmap(trainer.init)(seed_keys(0, 1))
    runner.warm_up(states)
    compiled = (runner._act._cache_size(), runner._absorb._cache_size())
    assert compiled == (1, 1)
    trained, _ = runner.run_chunk(states, jnp.int32(40))  # past the first updates (batch of 4 episodes)
    assert int(trained.updates[0]) > 0
    assert (runner._act._cache_size(), runner._absorb._cache_size()) == compiled  # nothing compiled again


class BrokenEnv(LeavingEnv):
    def step(self, actions):
        raise RuntimeError("broken step")


def make_broken_host_env():
    return PettingZooEnv(BrokenEnv(), time_limit=6)


def test_env_workers_step_the_same_envs_as_this_process():
    """2 seeds x 3 envs of MPE simple_spread (start positions from the reset seed) stepped in 2
    worker processes give the rollouts of the same envs stepped here, bit for bit."""
    import dataclasses

    import jax
    import jax.numpy as jnp

    from wqmix.cli import parse_train_args
    from wqmix.host_rollout import HostRunner
    from wqmix.train import Trainer, seed_keys

    config, _, _ = parse_train_args(["--env", "pettingzoo", "--algo", "vdn", "--train.num-envs", "3",
                                     "--num-seeds", "2", *TINY])
    trainer = Trainer(config)
    params = jax.jit(jax.vmap(trainer.init))(seed_keys(0, 2)).learner.params["agent"]
    keys, epsilon = seed_keys(1, 2), jnp.full((2,), 0.5)
    here = HostRunner(trainer, config.env.make, 2)
    workers_config = dataclasses.replace(config, train=dataclasses.replace(config.train, env_workers=2))
    there = HostRunner(Trainer(workers_config), workers_config.env.make, 2)
    there._act = here._act  # the same compiled acting step (compiling it twice would only cost time)
    try:
        results = [jax.device_get(runner.rollout(params, keys, epsilon)) for runner in (here, there)]
    finally:
        there.close()
    assert not any(process.is_alive() for process in there.envs.processes)
    episodes = results[0][0]
    assert episodes.filled.all() and len(np.unique(episodes.obs[:, :, 0, 0, 2])) == 6  # 6 different starts
    for ours, theirs in zip(*map(jax.tree_util.tree_leaves, results)):
        np.testing.assert_array_equal(ours, theirs)


def test_env_workers_report_errors():
    from wqmix.env_pool import WorkerEnvs

    with pytest.raises(ValueError, match="train.env_workers needs an env factory that pickles"):
        WorkerEnvs(lambda: make_broken_host_env(), 2, 2)
    envs = WorkerEnvs(make_broken_host_env, 2, 2)
    try:
        first = envs.reset(np.array([0, 1]))
        assert first.obs.shape == (2, 3, 4) and first.alive.all()
        with pytest.raises(RuntimeError, match="broken step"):  # raised in a worker, raised here
            envs.step(np.array([1]), np.zeros((1, 3), np.int32))
    finally:
        envs.close()


def test_env_workers_start_from_a_script_read_from_stdin():
    """`python - < script.py`: spawned workers must not try to run the file "<stdin>" again."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = ("import numpy as np\n"
              "from wqmix.env_pool import WorkerEnvs\n"
              "from test_pettingzoo import make_broken_host_env\n"
              "envs = WorkerEnvs(make_broken_host_env, 2, 2)\n"
              "print(envs.reset(np.array([0, 1])).obs.shape)\n"
              "envs.close()\n")
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)})
    assert done.returncode == 0 and done.stdout.strip() == "(2, 3, 4)", done.stderr[-2000:]


class TwoActionAgentEnv(LeavingEnv):
    def action_space(self, agent):
        return spaces.Discrete(2 if agent == "c" else 3)


def test_padding_is_named():
    assert PettingZooEnv(LeavingEnv(), time_limit=6).padded == ()
    env = PettingZooEnv(TwoActionAgentEnv(), time_limit=6)
    assert env.padded == ("actions padded to 3 with actions that are never available: c (2)",)
    assert env.reset(0).avail[2].tolist() == [True, True, False]
