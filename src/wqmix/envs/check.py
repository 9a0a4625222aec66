"""`check_env`: play a few episodes of an environment with random available actions and report,
in plain words, everything that breaks the wqmix protocol, before anything is compiled for
training.

Works for both kinds of environment: `Environment` (JAX: jitted `reset(key)` / `step(key,
env_state, actions)`) and `HostEnvironment` (stepped in Python: `reset(seed)` / `step(actions)`).
It checks:

- the spec: every size positive;
- every `TimeStep` field against the spec: shape and dtype (obs (agents, obs_dim) float32,
  state (state_dim,) float32, avail (agents, actions) bool, reward float32 and terminated,
  truncated, won bool scalars, alive None or (agents,) bool); after a reset, terminated and
  truncated false and reward 0;
- NaN or inf in obs, state or reward; obs and state values that the replay buffer cannot store
  exactly in `spec.obs_dtype` / `spec.state_dtype`;
- an agent with no available action;
- an episode that runs past `spec.time_limit` with neither terminated nor truncated set;
- determinism: JAX envs must give identical time steps for two eager calls of `reset` (same key)
  and of `step` (same key, state and actions); host envs must give identical time steps after two
  resets with the same seed followed by the same actions;
- masked actions: at a few steps, one agent takes an action that `avail` marks unavailable; its
  outcome must equal the outcome of one of that agent's available actions (same key; host envs
  are copied with `copy.deepcopy` before each trial step), or the env must raise. An env where a
  masked action acts as some available action (a move off the grid acting as "stay") passes.

Every problem is reported (the first time it is seen). Each is an error or a warning:

- errors (the env cannot be trained on as it is: `EnvCheckError`): a bad spec, a field of the
  wrong shape or dtype, NaN or inf, values the replay buffer would change, an agent with no
  available action, an episode past its time limit, an env that acts on a masked action, and
  an env that raises;
- warnings (training stays correct; returned by `check_env`): non-determinism, of a JAX env's
  eager calls or of a host env across resets with the same seed. The transitions stored are the
  ones that happened, so learning is not corrupted; only runs of one seed stop being repeatable.
  With `strict`, warnings count as errors.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from wqmix.envs.base import Environment, EnvSpec, HostEnvironment
from wqmix.errors import EnvCheckError

__all__ = ["check_env"]

DEFAULT_STEP_CAP = 50
"""Default `max_steps`: the spec's time limit, capped at this."""
FULL_EPISODE_CAP = 1000
"""With the default `max_steps`, the first episode is played on to the time limit (when the
limit is at most this) so that the time-limit check sees it."""
MASK_TRIALS = 3
"""Steps at which one agent tries a masked action."""
HOST_DETERMINISM_STEPS = 5
"""Steps replayed after two resets with the same seed (host envs)."""
ATOL = 1e-6
"""Float tolerance when two time steps are compared (determinism, masked actions)."""

FIELDS = ("obs", "state", "avail", "reward", "terminated", "truncated", "won", "alive")
_FLAGS = ("terminated", "truncated", "won")


WARNING_KINDS = ("determinism",)
"""Problem kinds (the first element of a problem's key) that are warnings, not errors."""


class _Problems:
    """Problem lines in the order found; each kind (key) is reported once, where first seen."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.warnings: list[str] = []
        self._keys: set[Any] = set()

    def add(self, key: Any, line: str) -> None:
        if key not in self._keys:
            self._keys.add(key)
            (self.warnings if key[0] in WARNING_KINDS else self.lines).append(line)


def _fmt(value: Any) -> str:
    """A short plain rendering of a number or small array."""
    a = np.asarray(value)
    if a.ndim == 0:
        v = a.item()
        if isinstance(v, float):
            return f"{v:.6g}"
        return str(v)
    if a.size <= 8:
        return np.array2string(a, precision=6, separator=", ")
    return f"array of shape {a.shape}"


def _exc(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _describe_type(value: Any) -> str:
    return "None" if value is None else type(value).__name__


# ------------------------------------------------------------------------------------------
# One time step against the spec


def _expected(spec: EnvSpec) -> dict[str, tuple[tuple[int, ...], str, Any]]:
    """field -> (shape, shape in words, dtype)."""
    return {
        "obs": ((spec.num_agents, spec.obs_dim), "(agents, obs_dim)", np.float32),
        "state": ((spec.state_dim,), "(state_dim,)", np.float32),
        "avail": ((spec.num_agents, spec.num_actions), "(agents, actions)", np.bool_),
        "reward": ((), "a scalar", np.float32),
        "terminated": ((), "a scalar", np.bool_),
        "truncated": ((), "a scalar", np.bool_),
        "won": ((), "a scalar", np.bool_),
        "alive": ((spec.num_agents,), "(agents,)", np.bool_),
    }


def _to_numpy(timestep: Any) -> dict[str, Any]:
    """field -> NumPy array, None (absent or None), or the unconvertible object itself."""
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(timestep, name, None)
        if value is None:
            out[name] = None
            continue
        try:
            out[name] = np.asarray(value)
        except Exception:  # noqa: BLE001 - reported as a wrong type below
            out[name] = value
        if isinstance(out[name], np.ndarray) and out[name].dtype == object:
            out[name] = value
    return out


def _check_values(where: str, ts: dict[str, Any], spec: EnvSpec, problems: _Problems, at_reset: bool) -> None:
    expected = _expected(spec)
    ok: dict[str, bool] = {}
    for name, (shape, words, dtype) in expected.items():
        value = ts[name]
        if value is None:
            ok[name] = False
            if name != "alive":
                problems.add(("missing", name), f"{where}: {name} is None, expected an array of shape "
                                                f"{shape} = {words}")
            continue
        if not isinstance(value, np.ndarray):
            ok[name] = False
            problems.add(("type", name), f"{where}: {name} is a {_describe_type(value)}, expected an array "
                                         f"of shape {shape} = {words}")
            continue
        good = True
        if value.shape != shape:
            good = False
            extra = " or None" if name == "alive" else ""
            problems.add(("shape", name), f"{where}: {name} has shape {value.shape}, expected {shape} = "
                                          f"{words}{extra}")
        if value.dtype != np.dtype(dtype):
            good = False
            problems.add(("dtype", name), f"{where}: {name} has dtype {value.dtype}, expected "
                                          f"{np.dtype(dtype).name}")
        ok[name] = good

    # NaN / inf, and values the replay buffer cannot store exactly.
    for name in ("obs", "state", "reward"):
        value = ts[name]
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.number):
            continue
        bad = ~np.isfinite(value)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0]) if value.ndim else ()
            what = _fmt(value[index] if index else value)
            if name == "obs" and value.ndim == 2:
                agents = sorted({int(i) for i in np.flatnonzero(bad.any(axis=1))})
                who = ", ".join(map(str, agents))
                problems.add(("finite", name), f"{where}: obs of agent{'s' if len(agents) > 1 else ''} {who} "
                                               f"holds NaN or inf (first: {what} at agent {index[0]}, "
                                               f"index {index[1]})")
            elif name == "state" and value.ndim == 1:
                problems.add(("finite", name), f"{where}: state holds NaN or inf (first: {what} at index "
                                               f"{index[0]})")
            elif value.ndim == 0:
                problems.add(("finite", name), f"{where}: reward is {what}, expected a finite number")
            else:
                problems.add(("finite", name), f"{where}: {name} holds NaN or inf")
            continue
        storage = getattr(spec, f"{name}_dtype", None)
        if storage is None or not ok.get(name, False):
            continue
        storage = np.dtype(storage)
        if storage.kind in "fc" and storage.itemsize >= 4:
            continue
        with np.errstate(all="ignore"):
            stored = value.astype(storage).astype(value.dtype)
        differs = stored != value
        if differs.any():
            index = tuple(int(i) for i in np.argwhere(differs)[0])
            at = f"agent {index[0]}, index {index[1]}" if name == "obs" else f"index {index[0]}"
            problems.add(("storage", name), f"{where}: {name} value {_fmt(value[index])} ({at}) cannot be "
                                            f"stored exactly as spec.{name}_dtype {storage.name} (the replay "
                                            f"buffer would keep {_fmt(stored[index])})")

    avail = ts["avail"]
    if ok.get("avail", False) or (isinstance(avail, np.ndarray) and avail.shape == expected["avail"][0]):
        none = np.flatnonzero(~avail.astype(bool).any(axis=-1))
        if none.size:
            agents = ", ".join(map(str, none.tolist()))
            plural = none.size > 1
            problems.add(("no-action",), f"{where}: agent{'s' if plural else ''} {agents} "
                                         f"{'have' if plural else 'has'} no available action (avail row all "
                                         "false); every agent needs at least one, e.g. a no-op when out of play")

    if at_reset:
        for name in ("terminated", "truncated"):
            if isinstance(ts[name], np.ndarray) and ts[name].size == 1 and bool(ts[name].reshape(())):
                problems.add(("reset-flag", name), f"{where}: {name} is true, expected false right after a reset")
        reward = ts["reward"]
        if (isinstance(reward, np.ndarray) and reward.size == 1 and np.issubdtype(reward.dtype, np.number)
                and np.isfinite(reward).all() and float(reward.reshape(())) != 0.0):
            problems.add(("reset-reward",), f"{where}: reward is {_fmt(reward.reshape(()))}, expected 0 right "
                                            "after a reset (no step led here)")


def _flag(ts: dict[str, Any], name: str) -> bool:
    value = ts[name]
    try:
        return bool(np.any(np.asarray(value, dtype=bool)))
    except Exception:  # noqa: BLE001 - an unreadable flag is reported by _check_values
        return False


def _avail_matrix(ts: dict[str, Any], spec: EnvSpec) -> np.ndarray:
    """The avail mask as (agents, actions) bool; all true where it is unusable."""
    avail = ts["avail"]
    if isinstance(avail, np.ndarray) and avail.shape == (spec.num_agents, spec.num_actions):
        return avail.astype(bool)
    return np.ones((spec.num_agents, spec.num_actions), bool)


def _random_actions(rng: np.random.Generator, avail: np.ndarray) -> np.ndarray:
    actions = np.zeros(avail.shape[0], np.int32)
    for i, row in enumerate(avail):
        choices = np.flatnonzero(row)
        actions[i] = rng.choice(choices) if choices.size else 0
    return actions


# ------------------------------------------------------------------------------------------
# Comparing two time steps


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Plain descriptions of the fields in which two time steps differ ("first vs second")."""
    out = []
    for name in FIELDS:
        x, y = a[name], b[name]
        if x is None and y is None:
            continue
        if x is None or y is None or not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
            if x is not y:
                out.append(f"{name} ({_describe_type(x)} vs {_describe_type(y)})")
            continue
        if x.shape != y.shape:
            out.append(f"{name} (shape {x.shape} vs {y.shape})")
            continue
        if np.issubdtype(x.dtype, np.floating) or np.issubdtype(y.dtype, np.floating):
            differs = ~np.isclose(x.astype(np.float64), y.astype(np.float64), rtol=ATOL, atol=ATOL, equal_nan=True)
        else:
            differs = x != y
        if not np.any(differs):
            continue
        if x.ndim == 0:
            out.append(f"{name} ({_fmt(x)} vs {_fmt(y)})")
            continue
        index = tuple(int(i) for i in np.argwhere(differs)[0])
        if name in ("obs", "avail") and x.ndim == 2:
            at = f"agent {index[0]}, index {index[1]}"
        elif name == "alive":
            at = f"agent {index[0]}"
        else:
            at = "index " + ", ".join(map(str, index))
        out.append(f"{name} at {at} ({_fmt(x[index])} vs {_fmt(y[index])})")
    return out


# ------------------------------------------------------------------------------------------
# Drivers: one interface over JAX and host environments


class _JaxDriver:
    def __init__(self, env: Environment, seed: int):
        import jax

        self.jax = jax
        self.env = env
        self._reset = jax.jit(env.reset)
        self._step = jax.jit(env.step)
        self.key = jax.random.key(seed)
        self.env_state: Any = None
        self.step_key: Any = None

    def reset(self, episode: int) -> Any:
        self.key, reset_key = self.jax.random.split(self.key)
        out = self._reset(reset_key)
        self.env_state, ts = _unpack(out, "env.reset")
        return ts

    def next_key(self) -> None:
        self.key, self.step_key = self.jax.random.split(self.key)

    def step(self, actions: np.ndarray) -> Any:
        out = self._step(self.step_key, self.env_state, self.jax.numpy.asarray(actions, self.jax.numpy.int32))
        self.env_state, ts = _unpack(out, "env.step")
        return ts

    def trial(self, actions: np.ndarray) -> Any:
        out = self._step(self.step_key, self.env_state, self.jax.numpy.asarray(actions, self.jax.numpy.int32))
        return _unpack(out, "env.step")[1]


class _HostDriver:
    def __init__(self, env: HostEnvironment, seed: int):
        self.env = env
        self.seed = seed

    def reset(self, episode: int) -> Any:
        return _timestep_or_raise(self.env.reset(self.seed + episode), "env.reset")

    def next_key(self) -> None:
        pass

    def step(self, actions: np.ndarray) -> Any:
        return _timestep_or_raise(self.env.step(actions.copy()), "env.step")

    def trial(self, actions: np.ndarray) -> Any:
        return _timestep_or_raise(copy.deepcopy(self.env).step(actions.copy()), "env.step")


class _ProtocolError(Exception):
    """A return value of the wrong kind (not a TimeStep): the episode cannot go on."""


def _timestep_or_raise(value: Any, call: str) -> Any:
    if not all(hasattr(value, name) for name in FIELDS[:-1]):
        raise _ProtocolError(f"{call} returned a {_describe_type(value)}, expected a TimeStep")
    return value


def _unpack(out: Any, call: str) -> tuple[Any, Any]:
    if not (isinstance(out, tuple) and len(out) == 2):
        raise _ProtocolError(f"{call} returned a {_describe_type(out)}, expected (env_state, TimeStep)")
    return out[0], _timestep_or_raise(out[1], call)


# ------------------------------------------------------------------------------------------
# The checks


def _check_spec(spec: Any, problems: _Problems) -> bool:
    if not isinstance(spec, EnvSpec):
        problems.add(("spec",), f"env.spec is a {_describe_type(spec)}, expected an EnvSpec")
        return False
    good = True
    for field in ("num_agents", "obs_dim", "state_dim", "num_actions", "time_limit"):
        value = getattr(spec, field)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            good = False
            problems.add(("spec", field), f"spec.{field} is {value!r}, expected a positive integer")
    return good


def _masked_trial(driver: Any, where: str, step: int, avail: np.ndarray, actions: np.ndarray,
                  rng: np.random.Generator, problems: _Problems) -> bool:
    """One agent with both available and unavailable actions tries a masked one. Returns whether
    a trial was made."""
    candidates = [i for i, row in enumerate(avail) if row.any() and not row.all()]
    if not candidates:
        return False
    agent = int(rng.choice(candidates))
    masked = int(rng.choice(np.flatnonzero(~avail[agent])))
    outcomes = []
    for action in np.flatnonzero(avail[agent]):
        trial_actions = actions.copy()
        trial_actions[agent] = action
        try:
            outcomes.append((int(action), _to_numpy(driver.trial(trial_actions))))
        except Exception:  # noqa: BLE001 - an available action that fails shows in the episode run
            return True
    trial_actions = actions.copy()
    trial_actions[agent] = masked
    try:
        result = _to_numpy(driver.trial(trial_actions))
    except Exception:  # noqa: BLE001 - refusing a masked action is correct
        return True
    differences = [(len(diff), action, diff) for action, outcome in outcomes
                   if (diff := _differences(result, outcome))]
    if len(differences) == len(outcomes):
        _, closest, diff = min(differences)
        problems.add(("masked",), f"{where}: env.step acted on action {masked} of agent {agent} at step {step} "
                                  "although avail marks it unavailable (its result differs from every available "
                                  "action's): the mask and the dynamics disagree (closest: available action "
                                  f"{closest}, which differs in " + "; ".join(diff) + ", masked vs available)")
    return True


def _play(driver: Any, spec: EnvSpec, num_episodes: int, max_steps: int, first_episode_steps: int,
          rng: np.random.Generator, problems: _Problems) -> None:
    trials_left = MASK_TRIALS
    for episode in range(1, num_episodes + 1):
        prefix = f"episode {episode}"
        try:
            ts = _to_numpy(driver.reset(episode - 1))
        except _ProtocolError as e:
            problems.add(("protocol", "reset"), f"{prefix} reset: {e}")
            return
        except Exception as e:  # noqa: BLE001 - reported, and nothing further can run
            problems.add(("raised", "reset"), f"{prefix} reset: env.reset raised {_exc(e)}")
            return
        _check_values(f"{prefix} reset", ts, spec, problems, at_reset=True)
        limit = first_episode_steps if episode == 1 else max_steps
        t = 0
        while t < limit and not (_flag(ts, "terminated") or _flag(ts, "truncated")):
            avail = _avail_matrix(ts, spec)
            actions = _random_actions(rng, avail)
            driver.next_key()
            t += 1
            if trials_left:
                try:
                    trials_left -= _masked_trial(driver, prefix, t, avail, actions, rng, problems)
                except _ProtocolError:
                    pass  # reported by the step below
            try:
                ts = _to_numpy(driver.step(actions))
            except _ProtocolError as e:
                problems.add(("protocol", "step"), f"{prefix} step {t}: {e}")
                return
            except Exception as e:  # noqa: BLE001 - whatever the env raises is reported
                problems.add(("raised", "step"), f"{prefix} step {t}: env.step raised {_exc(e)} "
                                                 f"(actions {actions.tolist()})")
                return
            _check_values(f"{prefix} step {t}", ts, spec, problems, at_reset=False)
            if t >= spec.time_limit and not (_flag(ts, "terminated") or _flag(ts, "truncated")):
                problems.add(("time-limit",), f"{prefix} step {t}: the episode runs past spec.time_limit "
                                              f"({spec.time_limit}) with terminated and truncated both false "
                                              "(the env must end or truncate it by then)")
                break


def _jax_determinism(env: Environment, spec: EnvSpec, seed: int, rng: np.random.Generator,
                     problems: _Problems) -> None:
    import jax
    import jax.numpy as jnp

    reset_key, step_key = jax.random.split(jax.random.fold_in(jax.random.key(seed), 1))
    try:
        state_a, ts_a = _unpack(env.reset(reset_key), "env.reset")
        state_b, ts_b = _unpack(env.reset(reset_key), "env.reset")
    except Exception as e:  # noqa: BLE001 - whatever the env raises is reported
        problems.add(("determinism-raised",), f"determinism: env.reset raised {_exc(e)} when called eagerly "
                                              "(outside jit)")
        return
    a, b = _to_numpy(ts_a), _to_numpy(ts_b)
    diff = _differences(a, b)
    if diff:
        problems.add(("determinism", "reset"), "determinism: reset called twice eagerly with the same key gave "
                                               "different time steps: " + "; ".join(diff) + " (first vs second "
                                               "call)")
        return
    actions = _random_actions(rng, _avail_matrix(a, spec))
    try:
        _, ts_a = _unpack(env.step(step_key, state_a, jnp.asarray(actions, jnp.int32)), "env.step")
        _, ts_b = _unpack(env.step(step_key, state_a, jnp.asarray(actions, jnp.int32)), "env.step")
    except Exception as e:  # noqa: BLE001 - whatever the env raises is reported
        problems.add(("determinism-raised",), f"determinism: env.step raised {_exc(e)} when called eagerly "
                                              f"(outside jit) with actions {actions.tolist()}")
        return
    diff = _differences(_to_numpy(ts_a), _to_numpy(ts_b))
    if diff:
        problems.add(("determinism", "step"), "determinism: step 1 called twice eagerly with the same key, state "
                                              f"and actions {actions.tolist()} gave different time steps: "
                                              + "; ".join(diff) + " (first vs second call)")


def _host_determinism(env: HostEnvironment, spec: EnvSpec, seed: int, rng: np.random.Generator,
                      problems: _Problems) -> None:
    runs: list[list[dict[str, Any]]] = []
    actions_taken: list[np.ndarray] = []
    for run in range(2):
        try:
            steps = [_to_numpy(_timestep_or_raise(env.reset(seed), "env.reset"))]
            for t in range(HOST_DETERMINISM_STEPS):
                ts = steps[-1]
                if _flag(ts, "terminated") or _flag(ts, "truncated"):
                    break
                if run == 0:
                    actions_taken.append(_random_actions(rng, _avail_matrix(ts, spec)))
                elif t >= len(actions_taken):
                    break
                steps.append(_to_numpy(_timestep_or_raise(env.step(actions_taken[t].copy()), "env.step")))
        except Exception:  # noqa: BLE001 - a raising env is reported by the episode run
            return
        runs.append(steps)
    for t, (a, b) in enumerate(zip(*runs)):
        diff = _differences(a, b)
        if diff:
            where = "reset" if t == 0 else f"step {t}"
            problems.add(("determinism",), f"determinism: two resets with seed {seed} followed by the same actions "
                                           f"gave different time steps at {where}: " + "; ".join(diff)
                                           + " (first vs second run)")
            return
    if len(runs[0]) != len(runs[1]):
        problems.add(("determinism",), f"determinism: two resets with seed {seed} followed by the same actions "
                                       f"ended after {len(runs[0]) - 1} and {len(runs[1]) - 1} steps")


def check_env(env: Environment | HostEnvironment, num_episodes: int = 2, max_steps: int | None = None,
              seed: int = 0, strict: bool = False) -> list[str]:
    """Play `num_episodes` episodes of `env` with random available actions and raise
    `EnvCheckError` listing every error found (see the module docstring), one line each, naming
    where it was seen (reset or step k), the field, the agent and expected vs actual; the
    warnings follow, marked "warning:". Returns the warnings (one line each) when there is no
    error; with `strict`, a warning is an error too.

    `max_steps`: steps per episode; by default the spec's time limit capped at 50, and the first
    episode is then played on to the time limit (up to 1000 steps) so that an episode overrunning
    it is caught."""
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {max_steps}")
    name = type(env).__name__
    problems = _Problems()
    if isinstance(env, HostEnvironment):
        host = True
    elif isinstance(env, Environment):
        host = False
    else:
        raise EnvCheckError(f"{name} failed 1 check(s):\n  {name} is neither a wqmix.envs.base.Environment "
                            "(JAX) nor a HostEnvironment (stepped on the host)")
    spec = getattr(env, "spec", None)
    if _check_spec(spec, problems):
        rng = np.random.default_rng(seed)
        if max_steps is None:
            max_steps = min(spec.time_limit, DEFAULT_STEP_CAP)
            first = spec.time_limit if spec.time_limit <= FULL_EPISODE_CAP else max_steps
        else:
            first = max_steps
        driver: Any = _HostDriver(env, seed) if host else _JaxDriver(env, seed)
        _play(driver, spec, num_episodes, max_steps, first, rng, problems)
        if host:
            _host_determinism(env, spec, seed, rng, problems)
        else:
            _jax_determinism(env, spec, seed, rng, problems)
    errors, warnings = problems.lines, problems.warnings
    if strict:
        errors, warnings = errors + warnings, []
    if errors:
        lines = [f"  {line}" for line in errors] + [f"  warning: {line}" for line in warnings]
        raise EnvCheckError(f"{name} failed {len(errors)} check(s):\n" + "\n".join(lines))
    return warnings
