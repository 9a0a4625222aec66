"""Gymnasium multi-agent envs with `Tuple` observation and action spaces, in the wqmix protocol,
stepped on the host as EPyMARL's `gymma` wrapper steps them (`--env gym --env.id ID`): level-based
foraging (`lbforaging`, ids `Foraging-...-v3`) and the multi-robot warehouse (`rware`, ids
`rware-...-v2`), or any env written the same way.

What maps to what, and where each choice comes from:

- agents: the entries of the `Tuple` spaces, in order (as gymma's `n_agents`); each observation
  space a `Box` (flattened), each action space a `Discrete`. Agents of different sizes are padded
  (`wqmix.envs.padding`: zeros, and actions that are never available).
- team reward: the SUM of the agents' rewards (EPyMARL's common reward with
  `reward_scalarisation: sum`; gymma's other choice, the mean, only rescales it).
- available actions: `info["action_mask"]` (one mask per agent) where the env gives one, else every
  one of the agent's actions (LBF and RWARE give none; gymma's `get_avail_actions` marks every
  action of the agent's own available).
- state: the padded observations concatenated (these envs have no global state; gymma's
  `get_state` concatenates the observations too).
- terminated: the env's `terminated` (all agents' when it is a list, as gymma's `all(done)`).
- truncated: the env's `truncated` (any agent's), our cut at `spec.time_limit`, and an env's
  `terminated` at its own step limit (ours): LBF (`current_step >= max_episode_steps`) and RWARE
  (`_cur_steps >= max_steps`) end their episodes at their limit with `terminated=True,
  truncated=False`, which a runner reading `terminated` alone stores as terminal; a time-limit
  cut is not terminal (Pardo et al., 2018, "Time Limits in Reinforcement Learning"), so its
  target bootstraps here. An LBF episode whose last food is taken exactly at the limit is
  therefore counted as truncated; RWARE's end after `max_inactivity_steps` (off in its
  registrations) stays terminated.
- time limit: `time_limit` if > 0, else the env's own: the smallest of its registration's
  `max_episode_steps` (gymnasium's `TimeLimit`) and the unwrapped env's own step limit
  (`_max_episode_steps`: lbforaging, 50 in its registrations; `max_steps`: rware, 500).
- `won` always false (no battles); `alive` all true (agents never leave these envs).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Iterable, Sequence

import numpy as np

from wqmix.envs.base import EnvSpec, HostEnvironment, TimeStep
from wqmix.envs.padding import AgentShapes, stack_masks, stack_padded
from wqmix.errors import ConfigError

__all__ = ["GymMultiAgentEnv", "make_gym"]

REGISTERING_PACKAGES = ("lbforaging", "rware")
"""Imported (those installed) before `gymnasium.make` when the id names no module: the packages
whose envs EPyMARL's gymma runs, which register their ids on import. Default: ours."""
OWN_LIMIT_ATTRIBUTES = ("_max_episode_steps", "max_steps", "max_episode_steps")
"""Attributes of the unwrapped env that hold the step at which it ends episodes itself:
lbforaging's `ForagingEnv._max_episode_steps`, rware's `Warehouse.max_steps`, and the plain
spelling other envs use."""
CLOSE_MATCHES = 5
"""How many similar registered ids an unknown id's error lists."""


def describe_space(space: Any) -> str:
    """A one-line description of a Gymnasium space (its repr can span lines: Box bounds)."""
    kind = type(space).__name__
    if kind == "Tuple":
        return "Tuple(" + ", ".join(describe_space(s) for s in space.spaces) + ")"
    if kind == "Discrete":
        return f"Discrete({int(space.n)})"
    shape = getattr(space, "shape", None)
    return f"{kind}(shape {tuple(shape)})" if shape is not None else kind


def import_registering_package(env_id: str) -> None:
    """Import the package that registers `env_id`: the module before ":" when there is one (as
    gymnasium's "module:id" form), else each of `REGISTERING_PACKAGES` that is installed."""
    module, _, _ = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            raise ConfigError("env.id", env_id, f"cannot import {e.name!r} (is its package installed?)") from None
        return
    for package in REGISTERING_PACKAGES:
        try:
            importlib.import_module(package)
        except ModuleNotFoundError:
            pass  # not installed: its ids are simply not registered


def check_registered(env_id: str, registered: Iterable[str]) -> None:
    """The one-line ConfigError on env.id, with similar registered ids, unless the id (the part
    after ":" in the "module:id" form) is registered."""
    name = env_id.rpartition(":")[2]
    known = list(registered)
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=CLOSE_MATCHES)
    hint = ("similar registered ids: " + ", ".join(close)) if close else "no similar id is registered"
    raise ConfigError("env.id", env_id, f"is not a registered Gymnasium id ({hint}; LBF ids look like "
                                        "Foraging-8x8-2p-3f-v3, RWARE ids like rware-tiny-2ag-v2)")


def agent_shapes(env_id: str, observation_space: Any, action_space: Any) -> AgentShapes:
    """Each agent's flattened observation size and action count from the env's `Tuple` spaces;
    the one-line ConfigError on env.id for any other kind of space."""
    from gymnasium import spaces  # imported here: only when a Gymnasium env is built

    needs = "wqmix needs a gymnasium.spaces.Tuple with one {} per agent (as lbforaging's and rware's)"
    if not isinstance(observation_space, spaces.Tuple) or not all(
            isinstance(s, spaces.Box) for s in observation_space.spaces):
        raise ConfigError("env.id", env_id, f"has observation space {describe_space(observation_space)}; "
                                            + needs.format("Box"))
    if not isinstance(action_space, spaces.Tuple) or not all(
            isinstance(s, spaces.Discrete) for s in action_space.spaces):
        continuous = " (continuous actions are not supported)" if any(
            isinstance(s, spaces.Box) for s in getattr(action_space, "spaces", (action_space,))) else ""
        raise ConfigError("env.id", env_id, f"has action space {describe_space(action_space)}{continuous}; "
                                            + needs.format("Discrete"))
    if len(observation_space.spaces) != len(action_space.spaces):
        raise ConfigError("env.id", env_id, f"has {len(observation_space.spaces)} observation spaces but "
                                            f"{len(action_space.spaces)} action spaces; wqmix needs one each per agent")
    return AgentShapes(names=tuple(f"agent_{i}" for i in range(len(action_space.spaces))),
                       obs_sizes=tuple(int(np.prod(s.shape)) for s in observation_space.spaces),
                       action_counts=tuple(int(s.n) for s in action_space.spaces))


def own_step_limit(unwrapped: Any) -> int | None:
    """The step at which the unwrapped env ends its episodes itself (`OWN_LIMIT_ATTRIBUTES`), or
    None (rware's `max_steps=None`: no limit)."""
    for name in OWN_LIMIT_ATTRIBUTES:
        value = getattr(unwrapped, name, None)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0:
            return int(value)
    return None


def resolve_time_limit(time_limit: int, registered: int | None, own: int | None) -> int | None:
    """`time_limit` if > 0, else the env's own: the smallest of its registration's
    `max_episode_steps` and its own step limit that are set (None if neither is)."""
    if time_limit > 0:
        return time_limit
    limits = [limit for limit in (registered, own) if limit]
    return min(limits) if limits else None


def all_of(flag: Any) -> bool:
    """A bool, or all of a per-agent list of them (gymma's `all(done)`)."""
    return bool(np.all(np.asarray(flag, bool)))


def any_of(flag: Any) -> bool:
    """A bool, or any of a per-agent list of them: one agent's cut cuts the team's episode."""
    return bool(np.any(np.asarray(flag, bool)))


def team_reward(rewards: Any) -> float:
    """The sum of the agents' rewards (EPyMARL's common reward); a scalar passes through."""
    return float(np.sum(np.asarray(rewards, np.float64)))


def episode_end(terminated: bool, truncated: bool, steps: int, time_limit: int,
                own_limit: int | None) -> tuple[bool, bool]:
    """(terminated, truncated) of a step: a termination at or past the env's own step limit is a
    time-limit cut; a real termination wins over any cut (so truncated is false then)."""
    at_own_limit = own_limit is not None and steps >= own_limit
    really_terminated = terminated and not at_own_limit
    cut = truncated or (terminated and at_own_limit) or steps >= time_limit
    return really_terminated, cut and not really_terminated


def agent_masks(info: Any, shapes: AgentShapes) -> list[Any]:
    """Each agent's own mask ((own actions,) bool) from `info["action_mask"]` (one entry per
    agent), or None (every one of its actions) where the env gives none."""
    masks = info.get("action_mask") if isinstance(info, dict) else None
    if masks is None:
        return [None] * len(shapes.names)
    # A mask longer than the agent's action count (a padded (agents, actions) array) is cut to it.
    return [np.asarray(mask, bool).reshape(-1)[:count] for mask, count in zip(masks, shapes.action_counts)]


class GymMultiAgentEnv(HostEnvironment):
    """A Gymnasium multi-agent env (`Tuple` spaces) in wqmix's protocol; see the module docstring
    for what maps to what. Build it with `make_gym`."""

    def __init__(self, env: Any, env_id: str, time_limit: int = 0):
        self.env, self.env_id = env, env_id
        self.shapes = agent_shapes(env_id, env.observation_space, env.action_space)
        self.padded = self.shapes.padded()
        registered = getattr(getattr(env, "spec", None), "max_episode_steps", None)
        self.own_limit = own_step_limit(env.unwrapped)
        limit = resolve_time_limit(time_limit, registered, self.own_limit)
        if limit is None:
            raise ConfigError("env.time_limit", time_limit, f"{env_id} sets no episode limit of its own "
                                                            "(max_episode_steps, max_steps); give one > 0")
        n = len(self.shapes.names)
        self.spec = EnvSpec(num_agents=n, obs_dim=self.shapes.obs_dim, state_dim=n * self.shapes.obs_dim,
                            num_actions=self.shapes.num_actions, time_limit=limit)
        self._t = 0

    def _timestep(self, observations: Sequence[Any], info: Any, reward: float, terminated: bool,
                  truncated: bool) -> TimeStep:
        obs = stack_padded(observations, self.shapes.obs_dim)  # (agents, obs_dim) float32
        avail = stack_masks(agent_masks(info, self.shapes), self.shapes)  # (agents, actions) bool
        return TimeStep(obs=obs, state=obs.reshape(-1), avail=avail, reward=np.float32(reward),
                        terminated=np.bool_(terminated), truncated=np.bool_(truncated), won=np.bool_(False),
                        alive=np.ones((self.spec.num_agents,), bool))

    def reset(self, seed: int) -> TimeStep:
        observations, info = self.env.reset(seed=int(seed))
        self._t = 0
        return self._timestep(observations, info, 0.0, False, False)

    def step(self, actions: np.ndarray) -> TimeStep:
        chosen = [int(a) for a in actions]  # (agents,): gymma passes a list of ints too
        for i, (action, count) in enumerate(zip(chosen, self.shapes.action_counts)):
            if not 0 <= action < count:
                raise ValueError(f"agent {i} took action {action}; it has {count} (a padded action is never "
                                 "available)")
        observations, rewards, terminated, truncated, info = self.env.step(chosen)
        self._t += 1
        terminated, truncated = episode_end(all_of(terminated), any_of(truncated), self._t, self.spec.time_limit,
                                            self.own_limit)
        return self._timestep(observations, info, team_reward(rewards), terminated, truncated)

    def close(self) -> None:
        self.env.close()


def make_gym(env_id: str, kwargs: dict[str, Any], time_limit: int) -> GymMultiAgentEnv:
    """`gymnasium.make(env_id, **kwargs)` after importing the package that registers it, wrapped
    in `GymMultiAgentEnv`. Gymnasium's passive env checker is off (as gymma: `disable_env_checker`):
    it expects single-agent returns. Note that `gymnasium.make` takes `max_episode_steps` itself
    (adding its `TimeLimit`), so `{"max_episode_steps": k}` in kwargs never reaches LBF's own."""
    import gymnasium  # imported here: only when a Gymnasium env is asked for

    import_registering_package(env_id)
    check_registered(env_id, gymnasium.registry)
    try:
        env = gymnasium.make(env_id, disable_env_checker=True, **kwargs)
    except TypeError as e:
        raise ConfigError("env.kwargs", kwargs, str(e).split(" was raised from")[0] or "not accepted") from None
    return GymMultiAgentEnv(env, env_id, time_limit)
