"""Jumanji's multi-agent envs with discrete actions (level-based foraging, the robot warehouse,
...) in the wqmix protocol, compiled end to end. `jumanji` is imported only when one of these
envs is made, so the rest of wqmix starts fast.

What wqmix takes from a Jumanji env (`JumanjiEnv` says it per field):

- the action spec: a `MultiDiscreteArray` of shape (agents,), one discrete action per agent; an
  env with continuous actions, or a single-agent one, is refused before anything is compiled;
- the per-agent view in the `Observation` (the field whose leading axis is the agent count,
  other than `action_mask`; `KNOWN_ENVS` names it for the envs we know), flattened per agent;
- `action_mask` (agents, actions), the env's `time_limit`, and `step_type` / `discount` of its
  `TimeStep` for how the episode ended.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wqmix.envs.base import Environment, EnvSpec, TimeStep
from wqmix.envs.padding import AgentShapes
from wqmix.errors import ConfigError

__all__ = ["JumanjiEnv", "KNOWN_ENVS", "make_jumanji", "storage_dtype"]

STEP_LAST = 2
"""`jumanji.types.StepType.LAST`: the step that ends an episode (Jumanji)."""


class KnownEnv(NamedTuple):
    """What wqmix knows of one Jumanji env beyond what its specs say."""

    view: str | None
    """The `Observation` field holding each agent's view, (agents, ...); None: the env has none
    (`refused` says why)."""
    bounds: Callable[[Any], tuple[int, int]] | None = None
    """env -> (smallest, largest) value of a view: every value is an integer in between, so the
    replay buffer stores views in the smallest dtype that holds them (`storage_dtype`). None:
    float32."""
    real_end: Callable[[Any, Any], jax.Array] | None = None
    """(env, state after a step) -> () bool, for an env that reports its time limit as a
    termination (discount 0): whether the episode ended for a reason of its own there. None:
    the env's `TimeStep` keeps the two apart (truncation keeps discount 1)."""
    refused: str = ""
    """Why wqmix cannot take the env (when `view` is None)."""


def _lbf_bounds(env: Any) -> tuple[int, int]:
    """LBF's views lie within its `agents_view` spec: -1 (an item out of sight, vector view) up to
    max(grid size, the largest agent or food level). Checked against Jumanji's observers: a
    relative position is at most the item's own coordinate, below the grid size; a food's level
    is the sum of at most three agents' levels, below the spec's num_agents * max_agent_level; a
    grid view cell holds one agent's or one food's level, or a 0/1 access flag."""
    spec = env.observation_spec.agents_view
    return int(np.min(spec.minimum)), int(np.max(spec.maximum))


def _rware_bounds(env: Any) -> tuple[int, int]:
    """RWARE's views (Jumanji's `make_agent_observation`): the agent's own (x, y) cell, then 0/1
    flags and one-hot directions, so from 0 to the grid's longest side less one."""
    return 0, max(1, max(int(side) for side in env.grid_size) - 1)


def _rware_collided(env: Any, state: Any) -> jax.Array:
    """() bool: two robots share a cell in `state`, the warehouse's own end (Jumanji's
    `RobotWarehouse.step` recomputed on the state it returns). Jumanji ends an episode at its
    time limit with `termination` too (discount 0), so this tells the two apart."""
    from jumanji.environments.routing.robot_warehouse.utils import is_collision

    collisions = jax.vmap(functools.partial(is_collision, state.grid))(state.agents, env.agent_ids)  # (agents,)
    return jnp.any(collisions)


def _known_envs() -> dict[type, KnownEnv]:
    """Jumanji's multi-agent envs with discrete actions, by class. Connector's and Cleaner's
    observations have an axis as long as the agent count (a grid side, the agents' locations)
    that the generic rule (`find_view`) would take for per-agent views: they are refused here."""
    from jumanji.environments import Cleaner, Connector, LevelBasedForaging, RobotWarehouse

    shared = "its observation has no per-agent view ({}): wqmix supports " + ", ".join(KNOWN_ENVS)
    return {
        LevelBasedForaging: KnownEnv("agents_view", _lbf_bounds),
        RobotWarehouse: KnownEnv("agents_view", _rware_bounds, _rware_collided),
        Connector: KnownEnv(None, refused=shared.format("one grid shared by all agents")),
        Cleaner: KnownEnv(None, refused=shared.format("one grid shared by all agents, and their locations")),
    }


KNOWN_ENVS = ("LevelBasedForaging", "RobotWarehouse")
"""The Jumanji env classes whose view field, value bounds and ends wqmix knows (`_known_envs`);
other multi-agent envs with discrete actions are taken by the generic rule (`find_view`)."""


def known_env(env: Any) -> KnownEnv | None:
    """What wqmix knows of `env`'s class (a subclass included), or None."""
    return next((known for cls, known in _known_envs().items() if isinstance(env, cls)), None)


def storage_dtype(low: int, high: int) -> Any:
    """The smallest dtype that holds every integer in [low, high] exactly: bool for 0/1 (stored
    as bits), then uint8, int8, uint16, int16; else float32 (ours: the protocol's dtype)."""
    if low >= 0 and high <= 1:
        return np.bool_
    for dtype in (np.uint8, np.int8, np.uint16, np.int16):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return dtype
    return np.float32


def observation_fields(observation: Any) -> dict[str, Any]:
    """A Jumanji `Observation` (a NamedTuple, or a dataclass) as field -> value."""
    if hasattr(observation, "_asdict"):
        return dict(observation._asdict())
    if hasattr(observation, "__dataclass_fields__"):
        return {name: getattr(observation, name) for name in observation.__dataclass_fields__}
    return {}


def action_counts(action_spec: Any, where: str, name: str) -> tuple[int, ...]:
    """Each agent's action count from Jumanji's action spec, which must be a `MultiDiscreteArray`
    of shape (agents,); else the one-line ConfigError naming `where`."""
    dtype = getattr(action_spec, "dtype", None)
    shape = getattr(action_spec, "shape", None)
    kind = type(action_spec).__name__
    if dtype is not None and np.issubdtype(np.dtype(dtype), np.floating):
        raise ConfigError(where, name, f"has continuous actions (a {np.dtype(dtype).name} {kind} of shape {shape}); "
                                       "wqmix's agents choose among discrete actions")
    if kind != "MultiDiscreteArray" or shape is None or len(shape) != 1:
        raise ConfigError(where, name, f"is not a multi-agent env with one discrete action per agent (its action "
                                       f"spec is a {kind} of shape {shape}, not a MultiDiscreteArray of shape "
                                       "(agents,))")
    return tuple(int(count) for count in np.asarray(action_spec.num_values).reshape(-1))


def find_view(fields: dict[str, Any], num_agents: int, where: str, name: str) -> str:
    """The observation field holding the agents' views: the one field, other than
    `action_mask`, whose leading axis is the agent count; else the one-line ConfigError."""
    per_agent = [field for field, value in fields.items()
                 if field != "action_mask" and len(getattr(value, "shape", ())) >= 1 and value.shape[0] == num_agents]
    if len(per_agent) != 1:
        found = ", ".join(per_agent) if per_agent else "none"
        raise ConfigError(where, name, f"has no single per-agent view in its observation (fields with a leading "
                                       f"axis of {num_agents} agents, besides action_mask: {found}); wqmix knows the "
                                       "views of " + ", ".join(KNOWN_ENVS))
    return per_agent[0]


def make_jumanji(env_id: str, kwargs: dict[str, Any], generator: dict[str, Any], where: str = "env") -> Any:
    """`jumanji.make(env_id, **kwargs)`, with the env's own `RandomGenerator` (the class its module
    uses by default: LBF's, RWARE's, ...) when `generator` is not empty: the default generator's
    settings (Jumanji's) with those of `generator` over them; a bad
    keyword or layout is the one-line ConfigError naming `where`.kwargs or `where`.generator."""
    import jumanji  # imported here: only when a Jumanji env is asked for

    call = dict(kwargs)
    if generator:
        default = jumanji.make(env_id)
        module = sys.modules[type(default).__module__]
        if not hasattr(module, "RandomGenerator"):
            raise ConfigError(f"{where}.generator", json.dumps(generator), f"{env_id} has no RandomGenerator")
        try:
            call["generator"] = module.RandomGenerator(**{**generator_settings(module.RandomGenerator, default),
                                                          **generator})
        except (TypeError, AssertionError, ValueError) as e:
            raise ConfigError(f"{where}.generator", json.dumps(generator), _first_line(e)) from None
    try:
        return jumanji.make(env_id, **call)
    except (TypeError, AssertionError, ValueError) as e:
        raise ConfigError(f"{where}.kwargs", json.dumps(kwargs), _first_line(e)) from None


def generator_settings(cls: type, env: Any) -> dict[str, Any]:
    """The settings of `env`'s own generator (Jumanji keeps it in `env._generator`, each setting
    as an attribute of the parameter's name, or with a leading underscore as RWARE's) for the
    parameters of `cls`, so that `generator` need only name what it changes."""
    own = getattr(env, "_generator", None)
    settings = {}
    for name in inspect.signature(cls).parameters:
        for attribute in (name, f"_{name}"):
            if hasattr(own, attribute):
                settings[name] = getattr(own, attribute)
                break
    return settings


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


class JumanjiEnv(Environment):
    """Adapter from a Jumanji multi-agent `Environment` to wqmix's protocol.

    - obs (agents, obs_dim) float32: each agent's view (LBF's and RWARE's `agents_view`),
      flattened; stored in the smallest dtype that holds it for the envs in `KNOWN_ENVS`
      (LBF's vector view: int8, -1 marks an item out of sight; RWARE's: uint8), else float32;
    - state: the agents' views concatenated (as EPyMARL builds the state of LBF and RWARE; Jumanji
      gives no global state array);
    - avail: the observation's `action_mask` (agents, actions); every action where it has none;
      agents with fewer actions than the largest count get padded ones, never available;
    - reward: the team reward: an env's scalar reward as it is (RWARE: +1 per requested shelf
      delivered, shared), a per-agent reward (agents,) summed (EPyMARL's common reward). LBF's
      per-agent reward is each loading agent's share of the food eaten, weighted by its level;
      with `normalize_reward` (Jumanji's default) the shares of one food sum to its level over the
      total food level, so a whole episode's team reward sums to 1 when every food is eaten;
    - terminated / truncated, from Jumanji's `TimeStep` (Jumanji does not auto-reset, so the
      episode's last state stays observable; wqmix resets): a LAST step with discount 0 is
      terminated, one with discount above 0 (the time limit) truncated. RWARE reports its time
      limit as a termination too: there, a LAST step at the time limit without a collision is
      truncated (`KnownEnv.real_end`). LBF: terminated once every food is eaten (at the time
      limit too), else truncated at `time_limit` steps (Jumanji's default 100); RWARE:
      terminated when two robots collide, else truncated at `time_limit` (Jumanji's default 500);
    - actions (agents,) int32 become the action spec's dtype; the step's key is unused (Jumanji
      envs carry their own in their state).
    """

    def __init__(self, env: Any, where: str = "env.id", name: str | None = None):
        self.env = env
        name = name or type(env).__name__
        counts = action_counts(env.action_spec, where, name)
        self.num_agents = len(counts)
        time_limit = getattr(env, "time_limit", None)
        if not isinstance(time_limit, (int, np.integer)) or time_limit <= 0:
            raise ConfigError(where, name, f"has no positive time_limit (got {time_limit!r}); wqmix pads episodes "
                                           "to the env's longest")
        self.time_limit = int(time_limit)
        self._action_dtype = np.dtype(env.action_spec.dtype)
        self._known = known_env(env)
        if self._known is not None and self._known.view is None:
            raise ConfigError(where, name, self._known.refused)
        _, first = jax.eval_shape(env.reset, jax.random.key(0))  # shapes only: nothing is compiled
        fields = observation_fields(first.observation)
        self._view = self._known.view if self._known else find_view(fields, self.num_agents, where, name)
        view = fields[self._view]
        if view.shape[0] != self.num_agents:
            raise ConfigError(where, name, f"has views of shape {view.shape}, expected ({self.num_agents}, ...)")
        self.shapes = AgentShapes(names=tuple(f"agent_{i}" for i in range(self.num_agents)),
                                  obs_sizes=(int(np.prod(view.shape[1:])),) * self.num_agents,
                                  action_counts=counts)
        mask = fields.get("action_mask")
        self._has_mask = mask is not None
        if self._has_mask and tuple(mask.shape) != (self.num_agents, self.shapes.num_actions):
            raise ConfigError(where, name, f"has an action_mask of shape {mask.shape}, expected "
                                           f"({self.num_agents}, {self.shapes.num_actions}) = (agents, actions)")
        self._real_actions = self.shapes.real_actions()  # (agents, actions) bool
        self.padded = self.shapes.padded()
        bounds = self._known.bounds if self._known else None
        dtype = storage_dtype(*bounds(env)) if bounds else np.float32
        self.spec = EnvSpec(num_agents=self.num_agents, obs_dim=self.shapes.obs_dim,
                            state_dim=self.num_agents * self.shapes.obs_dim, num_actions=self.shapes.num_actions,
                            time_limit=self.time_limit, obs_dtype=dtype, state_dtype=dtype)

    def _timestep(self, observation: Any, reward: jax.Array, terminated: jax.Array,
                  truncated: jax.Array) -> TimeStep:
        view = getattr(observation, self._view)  # (agents, ...)
        obs = view.reshape(self.num_agents, -1).astype(jnp.float32)  # (agents, obs_dim)
        avail = jnp.asarray(self._real_actions)  # (agents, actions) bool
        if self._has_mask:
            avail = avail & observation.action_mask.astype(bool)
        return TimeStep(obs=obs, state=obs.reshape(-1), avail=avail, reward=reward, terminated=terminated,
                        truncated=truncated, won=jnp.asarray(False))

    def reset(self, key: jax.Array) -> tuple[Any, TimeStep]:
        state, timestep = self.env.reset(key)
        no = jnp.asarray(False)
        return state, self._timestep(timestep.observation, jnp.zeros((), jnp.float32), no, no)

    def step(self, key: jax.Array, env_state: Any, actions: jax.Array) -> tuple[Any, TimeStep]:
        state, timestep = self.env.step(env_state, jnp.asarray(actions).astype(self._action_dtype))
        last = timestep.step_type == STEP_LAST  # () bool
        terminated = last & jnp.all(timestep.discount == 0)  # discount: () or (agents,)
        if self._known is not None and self._known.real_end is not None:
            cut = (state.step_count >= self.time_limit) & ~self._known.real_end(self.env, state)
            terminated = terminated & ~cut
        reward = jnp.sum(timestep.reward).astype(jnp.float32)  # () or (agents,) -> the team's ()
        return state, self._timestep(timestep.observation, reward, terminated, last & ~terminated)

    def raw_random_policy(self) -> tuple[Any, Any]:
        """(reset(key) -> env state, step(key, env state) -> (env state, Jumanji's `TimeStep`)):
        the Jumanji env alone, without this adapter, each agent taking a uniformly random one of
        its own actions (masks ignored). `wqmix bench` times it beside acting, as the env's own
        rate."""
        counts = jnp.asarray(self.shapes.action_counts)

        def reset(key: jax.Array) -> Any:
            return self.env.reset(key)[0]

        def step(key: jax.Array, env_state: Any) -> Any:
            actions = jax.random.randint(key, (self.num_agents,), 0, counts)
            return self.env.step(env_state, actions.astype(self._action_dtype))

        return reset, step
