"""The environment checker (`wqmix.envs.check.check_env`, `wqmix check-env`): deliberately broken
environments, JAX and host-stepped, must each be reported with a precise line; our own
environments must pass."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wqmix.cli import main
from wqmix.envs.base import Environment, EnvSpec, HostEnvironment, TimeStep
from wqmix.envs.check import check_env
from wqmix.envs.matrix_game import MatrixGame
from wqmix.envs.payoffs import PAPER_PAYOFF
from wqmix.envs.configs import PredatorPreyConfig
from wqmix.errors import EnvCheckError

NO_ACTION = "has no available action (avail row all false); every agent needs at least one, e.g. a no-op when out of play"
MASKED = ("although avail marks it unavailable (its result differs from every available action's): "
          "the mask and the dynamics disagree")


def problems(env, **kwargs) -> list[str]:
    """The checker's problem lines (after the header line), asserting the header's count."""
    with pytest.raises(EnvCheckError) as info:
        check_env(env, **kwargs)
    header, *lines = str(info.value).splitlines()
    errors = [line for line in lines if not line.strip().startswith("warning: ")]
    assert header == f"{type(env).__name__} failed {len(errors)} check(s):"
    return [line.strip() for line in lines]


# --------------------------------------------------------------------------------------------
# JAX environments: MatrixGame with a hook that breaks one thing


class _Wrapped(Environment):
    """MatrixGame with hooks that can alter each TimeStep (after reset and after a step)."""

    def __init__(self, spec: EnvSpec | None = None, payoff=PAPER_PAYOFF):
        self.inner = MatrixGame(payoff)
        self.spec = spec if spec is not None else self.inner.spec

    def alter(self, timestep: TimeStep, at_reset: bool) -> TimeStep:
        return timestep

    def reset(self, key):
        state, ts = self.inner.reset(key)
        return state, self.alter(ts, True)

    def step(self, key, env_state, actions):
        state, ts = self.inner.step(key, env_state, actions)
        return state, self.alter(ts, False)


class _WrongObsShape(_Wrapped):
    def alter(self, ts, at_reset):
        return ts.replace(obs=ts.obs[:, :-1])


class _IntAvail(_Wrapped):
    def alter(self, ts, at_reset):
        return ts.replace(avail=ts.avail.astype(jnp.int32))


class _NanState(_Wrapped):
    def alter(self, ts, at_reset):
        return ts if at_reset else ts.replace(state=ts.state.at[2].set(jnp.nan))


class _NanObs(_Wrapped):
    def alter(self, ts, at_reset):
        return ts if at_reset else ts.replace(obs=ts.obs.at[1, 3].set(jnp.inf))


class _InfReward(_Wrapped):
    def alter(self, ts, at_reset):
        return ts if at_reset else ts.replace(reward=jnp.float32(jnp.inf))


class _NoActionAtReset(_Wrapped):
    def alter(self, ts, at_reset):
        return ts.replace(avail=ts.avail.at[1].set(False)) if at_reset else ts


class _NoActionAfterStep(_Wrapped):
    def alter(self, ts, at_reset):
        return ts if at_reset else ts.replace(avail=ts.avail.at[0].set(False))


class _NeverEnds(_Wrapped):
    """The one-step game never sets terminated: it runs past its time limit of 1."""

    def alter(self, ts, at_reset):
        return ts.replace(terminated=jnp.asarray(False))


class _FractionalObs(_Wrapped):
    """Observations of 0.5 although the spec stores them as uint8."""

    def alter(self, ts, at_reset):
        return ts.replace(obs=ts.obs * 0.5)


class _ResetCounter(_Wrapped):
    """Each (eager) call of reset sees a different Python counter: not a function of the key."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def alter(self, ts, at_reset):
        if at_reset:
            self.calls += 1
            return ts.replace(obs=ts.obs + self.calls)
        return ts


class _NumpyRandomStep(_Wrapped):
    """np.random inside step: two eager calls with the same key differ."""

    def alter(self, ts, at_reset):
        return ts if at_reset else ts.replace(reward=ts.reward + np.float32(np.random.random()))


class _MaskedAgent0Action2(_Wrapped):
    """Agent 0's action 2 is masked; the payoff decides whether the env still acts on it."""

    def alter(self, ts, at_reset):
        return ts.replace(avail=ts.avail.at[0, 2].set(False))


@pytest.mark.integration  # plays whole episodes of every built-in env
def test_our_simple_envs_pass():
    check_env(MatrixGame())
    check_env(_Wrapped())  # the wrapper itself is faithful
    check_env(PredatorPreyConfig().make())  # off-grid moves and a catch with no prey act as "stay"


def test_wrong_obs_shape():
    assert problems(_WrongObsShape()) == [
        "episode 1 reset: obs has shape (2, 4), expected (2, 5) = (agents, obs_dim)"]
    # The same env, with a spec that claims another obs_dim.
    wrapped = _Wrapped(MatrixGame().spec._replace(obs_dim=6))
    assert problems(wrapped) == ["episode 1 reset: obs has shape (2, 5), expected (2, 6) = (agents, obs_dim)"]


def test_wrong_avail_dtype():
    assert problems(_IntAvail()) == ["episode 1 reset: avail has dtype int32, expected bool"]


def test_nan_in_state_and_inf_in_obs_and_reward():
    assert problems(_NanState()) == ["episode 1 step 1: state holds NaN or inf (first: nan at index 2)"]
    assert problems(_NanObs()) == ["episode 1 step 1: obs of agent 1 holds NaN or inf (first: inf at agent 1, index 3)"]
    assert problems(_InfReward()) == ["episode 1 step 1: reward is inf, expected a finite number"]


def test_agent_without_available_action():
    assert problems(_NoActionAtReset()) == [f"episode 1 reset: agent 1 {NO_ACTION}"]
    assert problems(_NoActionAfterStep()) == [f"episode 1 step 1: agent 0 {NO_ACTION}"]


def test_episode_past_time_limit():
    assert problems(_NeverEnds()) == [
        "episode 1 step 1: the episode runs past spec.time_limit (1) with terminated and truncated both "
        "false (the env must end or truncate it by then)"]


def test_obs_that_replay_storage_would_change():
    assert problems(_FractionalObs()) == [
        "episode 1 reset: obs value 0.5 (agent 0, index 0) cannot be stored exactly as spec.obs_dtype uint8 "
        "(the replay buffer would keep 0)"]


def test_non_deterministic_jax_env():
    # A warning (training stays correct), returned; an error only when asked for strictness.
    (warning,) = check_env(_ResetCounter())
    (line,) = problems(_ResetCounter(), strict=True)
    assert line == warning
    assert re.fullmatch(r"determinism: reset called twice eagerly with the same key gave different time steps: "
                        r"obs at agent 0, index 0 \((\d+) vs (\d+)\) \(first vs second call\)", line), line
    (line,) = problems(_NumpyRandomStep(), strict=True)
    assert re.fullmatch(r"determinism: step 1 called twice eagerly with the same key, state and actions "
                        r"\[\d, \d\] gave different time steps: reward \(\S+ vs \S+\) \(first vs second call\)",
                        line), line


def test_env_that_acts_on_a_masked_action():
    # Row 2 pays 5 whatever agent 1 does; rows 0 and 1 pay 1 and 0: the masked action has an effect
    # that no available action has.
    acting = _MaskedAgent0Action2(payoff=((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (5.0, 5.0, 5.0)))
    assert problems(acting) == [f"episode 1: env.step acted on action 2 of agent 0 at step 1 {MASKED} (closest: "
                                "available action 0, which differs in reward (5 vs 1), masked vs available)"]
    # Paper payoff: row 2 equals row 1, so the masked action acts like an available one: passes.
    check_env(_MaskedAgent0Action2())


def test_several_problems_in_one_message_and_bad_spec():
    class _Both(_Wrapped):
        def alter(self, ts, at_reset):
            ts = ts.replace(obs=ts.obs[:, :-1])
            return ts if at_reset else ts.replace(reward=jnp.float32(jnp.nan))

    assert problems(_Both()) == ["episode 1 reset: obs has shape (2, 4), expected (2, 5) = (agents, obs_dim)",
                                 "episode 1 step 1: reward is nan, expected a finite number"]
    bad = _Wrapped(MatrixGame().spec._replace(num_actions=0, time_limit=-3))
    assert problems(bad) == ["spec.num_actions is 0, expected a positive integer",
                             "spec.time_limit is -3, expected a positive integer"]
    with pytest.raises(EnvCheckError, match=r"object is neither a wqmix.envs.base.Environment"):
        check_env(object())


@pytest.mark.integration
def test_jaxmarl_envs_pass():
    from wqmix.envs.configs import MpeSpreadConfig, SmaxConfig

    failures = []
    for config in (SmaxConfig(), MpeSpreadConfig()):
        try:
            check_env(config.make(), num_episodes=1)
        except EnvCheckError as e:
            failures.append(f"{config.name}: {e}")
    if failures:
        raise EnvCheckError("\n".join(failures))


# --------------------------------------------------------------------------------------------
# Host environments: a tiny NumPy game


class _HostGame(HostEnvironment):
    """Two agents, three actions, four steps. Reward: the sum of the actions plus a seeded random
    0..2; obs: (t, own last action); state: (t, both last actions). Agent 0's action 2 may be
    masked; `on_masked` says what the env then does with it."""

    def __init__(self, mask: bool = False, on_masked: str = "like-1", seeded: bool = True,
                 end: bool = True, reward_dtype=np.float32):
        self.mask, self.on_masked, self.seeded, self.end, self.reward_dtype = mask, on_masked, seeded, end, reward_dtype
        self.spec = EnvSpec(num_agents=2, obs_dim=2, state_dim=3, num_actions=3, time_limit=4)
        self.rng = np.random.default_rng(0)
        self.t = 0

    def avail(self) -> np.ndarray:
        avail = np.ones((2, 3), bool)
        if self.mask:
            avail[0, 2] = False
        return avail

    def timestep(self, last: np.ndarray, reward: float) -> TimeStep:
        return TimeStep(obs=np.stack([[self.t, last[0]], [self.t, last[1]]]).astype(np.float32),
                        state=np.array([self.t, *last], np.float32), avail=self.avail(),
                        reward=np.asarray(reward, self.reward_dtype), terminated=np.bool_(False),
                        truncated=np.bool_(self.end and self.t >= 4), won=np.bool_(False),
                        alive=np.ones(2, bool))

    def reset(self, seed: int) -> TimeStep:
        self.rng = np.random.default_rng(seed)
        self.t = 0
        return self.timestep(np.zeros(2), 0.0)

    def step(self, actions: np.ndarray) -> TimeStep:
        actions = np.asarray(actions).copy()
        if self.mask and actions[0] == 2:
            if self.on_masked == "raise":
                raise ValueError("action 2 of agent 0 is not available")
            if self.on_masked == "like-1":
                actions[0] = 1
        self.t += 1
        noise = self.rng.integers(0, 3) if self.seeded else np.random.random()  # unseeded: not reproducible
        return self.timestep(actions, float(actions.sum() + noise))


class _HostNoActionAtStep2(_HostGame):
    def avail(self):
        avail = super().avail()
        if self.t == 2:
            avail[1] = False
        return avail


def test_host_env_passes():
    assert check_env(_HostGame()) == []  # no warning either
    check_env(_HostGame(mask=True, on_masked="like-1"))  # masked action acts as an available one
    check_env(_HostGame(mask=True, on_masked="raise"))  # refusing a masked action is correct


def test_host_env_acting_on_a_masked_action():
    (line,) = problems(_HostGame(mask=True, on_masked="act"))
    # obs (t, own last action) and state (t, last actions) show action 2; no available action gives that.
    assert re.fullmatch(re.escape(f"episode 1: env.step acted on action 2 of agent 0 at step 1 {MASKED} (closest: "
                                  "available action 0, which differs in obs at agent 0, index 1 (2 vs 0); state at "
                                  "index 1 (2 vs 0); reward (") + r"\d+ vs \d+\), masked vs available\)", line), line


def test_host_env_non_deterministic():
    (warning,) = check_env(_HostGame(seeded=False))
    (line,) = problems(_HostGame(seeded=False), strict=True)
    assert line.split(": reward")[0] == warning.split(": reward")[0]  # unseeded: other values each time
    # Beside an error, the warning is listed, marked, and not counted among the failed checks.
    both = problems(_HostGame(seeded=False, reward_dtype=np.float64))
    assert both[0] == "episode 1 reset: reward has dtype float64, expected float32"
    assert both[1].startswith("warning: determinism: two resets with seed 0") and len(both) == 2
    for text in (line, warning):
        assert re.fullmatch(r"determinism: two resets with seed 0 followed by the same actions gave different time "
                            r"steps at step 1: reward \(\S+ vs \S+\) \(first vs second run\)", text), text


def test_host_env_broken_fields_and_time_limit():
    assert problems(_HostNoActionAtStep2()) == [f"episode 1 step 2: agent 1 {NO_ACTION}"]
    assert problems(_HostGame(reward_dtype=np.float64)) == ["episode 1 reset: reward has dtype float64, expected float32"]
    assert problems(_HostGame(end=False)) == [
        "episode 1 step 4: the episode runs past spec.time_limit (4) with terminated and truncated both "
        "false (the env must end or truncate it by then)"]


# --------------------------------------------------------------------------------------------
# `import wqmix` and the command line


@pytest.mark.integration
def test_wqmix_check_env_is_lazy():
    code = ("import sys, wqmix; assert 'jax' not in sys.modules, 'import wqmix imported jax'; "
            "from wqmix.envs.check import check_env; assert wqmix.check_env is check_env; "
            "print(wqmix.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.1.0"


@pytest.mark.integration
def test_cli_check_env_ok(capsys):
    assert main(["check-env", "predator-prey"]) == 0
    out = capsys.readouterr().out
    assert out == "predator-prey: OK (agents 8, obs 75, state 300, actions 6, time limit 200)\n"


def test_cli_check_env_config_error(capsys):
    assert main(["check-env", "predator-prey", "--env.grid-size", "-1"]) == 2
    err = capsys.readouterr().err
    assert err == "wqmix check-env: error: env.grid_size = -1 is invalid: must be >= 1\n"
    assert main(["check-env", "no-such-env"]) == 2
    assert capsys.readouterr().err.startswith("wqmix check-env: error: env = 'no-such-env' is invalid")


@dataclass(frozen=True)
class _BrokenConfig:
    name: ClassVar[str] = "broken-test-env"
    state_dim: int = 5

    def validate(self, path: str) -> None:
        pass

    def make(self) -> Environment:
        return _InfReward(MatrixGame().spec._replace(state_dim=self.state_dim))


def test_cli_check_env_failure_exits_1(capsys, monkeypatch):
    from wqmix.envs import registry

    monkeypatch.setitem(registry.ENV_CONFIGS, _BrokenConfig.name, _BrokenConfig)
    assert main(["check-env", _BrokenConfig.name, "--env.state-dim", "6"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "_InfReward failed 2 check(s):",
        "  episode 1 reset: state has shape (5,), expected (6,) = (state_dim,)",
        "  episode 1 step 1: reward is inf, expected a finite number"]


@dataclass(frozen=True)
class _UnseededConfig:
    name: ClassVar[str] = "unseeded-test-env"

    def validate(self, path: str) -> None:
        pass

    def make(self) -> HostEnvironment:
        return _HostGame(seeded=False)


def test_cli_check_env_warning_exits_0_and_says_it_is_a_warning(capsys, monkeypatch):
    from wqmix.envs import registry

    monkeypatch.setitem(registry.ENV_CONFIGS, _UnseededConfig.name, _UnseededConfig)
    assert main(["check-env", _UnseededConfig.name]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("unseeded-test-env: OK with 1 warning(s), which do not stop training (agents 2")
    assert out[1].startswith("  warning: determinism: two resets with seed 0") and len(out) == 2
    assert main(["check-env", _UnseededConfig.name, "--strict"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == "_HostGame failed 1 check(s):"


@pytest.mark.integration
@pytest.mark.parametrize("time_limit_terminal", [True, False])
def test_smax_time_limit_is_terminal_as_the_official_code_unless_asked(time_limit_terminal):
    """The official SMAC config (`continuing_episode: False`) stores a battle that reaches its
    time limit as terminated; with the option off it is a truncation (bootstrapped)."""
    from wqmix.envs.configs import SmaxConfig

    assert SmaxConfig().time_limit_terminal  # the official default
    env = SmaxConfig(time_limit_terminal=time_limit_terminal).make()
    obs, env_state = env.env.reset(jax.random.key(0))  # jaxmarl's own reset: its obs dict
    # Both teams alive and the episode over: only the time limit can have ended it.
    cut = env._timestep(obs, env_state, jnp.zeros(()), jnp.asarray(True))
    assert bool(cut.terminated) == time_limit_terminal and bool(cut.truncated) == (not time_limit_terminal)
    assert not bool(cut.won)
    going = env._timestep(obs, env_state, jnp.zeros(()), jnp.asarray(False))
    assert not bool(going.terminated) and not bool(going.truncated)


@pytest.mark.integration
def test_smax_map_names_read_from_the_source_equal_jaxmarls():
    code = ("import sys; from wqmix.envs.configs import _smax_map_names; names = _smax_map_names(); "
            "assert 'jaxmarl' not in sys.modules, 'read without importing jaxmarl'; "
            "from jaxmarl.environments.smax.smax_env import MAP_NAME_TO_SCENARIO; "
            "assert names == tuple(MAP_NAME_TO_SCENARIO), names; print(len(names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip().splitlines()[-1]) >= 10  # 3m, 2s3z, 3s5z, ... (jaxmarl 0.1: 14 maps)


def test_smac_world_state_scales_positions_and_cooldowns_as_smac_and_keeps_the_rest():
    """Two units of two types (features: health, x, y, cooldown, one-hot type; then teams and
    types) on a 32 x 16 map; the second unit is dead, so its features stay zeros."""
    from types import SimpleNamespace

    from wqmix.envs.jaxmarl_envs import smac_world_state

    env = SimpleNamespace(map_width=32, map_height=16, unit_type_weapon_cooldowns=jnp.array([0.5, 2.0]))
    inner = SimpleNamespace(unit_positions=jnp.zeros((2, 2)), unit_alive=jnp.array([True, False]),
                            unit_types=jnp.array([1, 0]))
    world = jnp.array([0.5, 24.0, 4.0, 1.5, 0.0, 1.0,   # alive: x 24 -> (24-16)/16, y 4 -> (4-8)/8, cd 1.5/2
                       0.0, 0.0, 0.0, 0.0, 0.0, 0.0,    # dead: zeros in, zeros out
                       0.0, 1.0, 1.0, 0.0])             # teams, types: kept
    expected = [0.5, 0.5, -0.5, 0.75, 0.0, 1.0] + [0.0] * 6 + [0.0, 1.0, 1.0, 0.0]
    np.testing.assert_allclose(smac_world_state(env, inner, world), expected)
    # jaxmarl's cooldown falls below 0 while a unit holds fire; SMAC's reads 0.
    held = smac_world_state(env, inner, world.at[3].set(-3.0))
    assert float(held[3]) == 0.0


@pytest.mark.integration
def test_smax_state_is_smacs_scale_by_default_and_raw_when_asked():
    from wqmix.envs.configs import SmaxConfig

    smac, raw = SmaxConfig(map="2s3z").make(), SmaxConfig(map="2s3z", state="raw").make()
    env_state, step = raw.reset(jax.random.key(0))
    _, scaled = smac.reset(jax.random.key(0))
    units = env_state.state.unit_positions.shape[0]
    width = step.state.shape[0] // units - 2
    assert np.abs(np.asarray(step.state)).max() > 10  # positions in map units
    # The units' features in [-1, 1]; jaxmarl's team and type indices after them are kept.
    assert np.abs(np.asarray(scaled.state[: units * width])).max() <= 1.0 + 1e-6
    assert scaled.state.shape == step.state.shape
    # Only the position and cooldown columns of the units differ.
    changed = np.flatnonzero(~np.isclose(np.asarray(scaled.state), np.asarray(step.state)))
    assert set(changed % width) <= {1, 2, 3} and changed.max() < units * width and changed.size >= units
    # Each ally's own block comes first (health 1 at the start), and Qatten keys on it, not on
    # state_dim // agents (which would cut across the enemies' blocks and the team indices).
    from wqmix import config as cfg
    from wqmix.agents import _attention_mixer

    assert smac.spec.state_unit_dim == raw.spec.state_unit_dim == width
    np.testing.assert_array_equal(np.asarray(step.state[: 5 * width : width]), np.ones(5))
    qatten = cfg.with_algo(cfg.Config(), "qatten")
    assert _attention_mixer(qatten.algo, qatten.network, smac.spec).unit_dim == width != smac.spec.state_dim // 5
