"""jaxmarl's envs, presented in the wqmix protocol (agents stacked on an axis, terminated and
truncated apart): SMAX and MPE spread through their presets (`JaxMarlEnv`), any other env with
JaxMARL's API through `JaxMarlApiEnv`. `jaxmarl` is imported only when one of these envs is made,
so the rest of wqmix starts fast."""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from wqmix.envs.base import Environment, EnvSpec, TimeStep
from wqmix.envs.padding import AgentShapes, stack_masks, stack_padded
from wqmix.errors import ConfigError


def smac_world_state(env: Any, inner: Any, world_state: jax.Array) -> jax.Array:
    """SMAX's `world_state` (state_dim,) scaled as SMAC's `get_state`: each living unit's
    position centred on the map and divided by half its size, its weapon cooldown divided by its
    type's and clipped to [0, 1]; health is already a fraction, dead units stay zeros, the team
    and type entries are kept.

    Layout (jaxmarl `get_world_state`): per unit (units, 4 + unit types) [health, x, y,
    cooldown, one-hot type], then the units' teams (units,) and types (units,)."""
    units = inner.unit_positions.shape[0]
    features = world_state[: units * (world_state.shape[0] // units - 2)].reshape(units, -1)
    half = jnp.array([env.map_width, env.map_height], jnp.float32) / 2.0
    alive = inner.unit_alive[:, None]  # (units, 1)
    position = jnp.where(alive, (features[:, 1:3] - half) / half, 0.0)
    # jaxmarl's cooldown keeps falling below 0 while a unit holds fire (-7.5 s seen on 2s3z);
    # SMAC's reads 0 there: clipped to [0, 1].
    cooldown = features[:, 3:4] / env.unit_type_weapon_cooldowns[inner.unit_types][:, None]
    cooldown = jnp.where(alive, jnp.clip(cooldown, 0.0, 1.0), 0.0)
    features = jnp.concatenate([features[:, :1], position, cooldown, features[:, 4:]], axis=1)
    return jnp.concatenate([features.reshape(-1), world_state[features.size:]])


class JaxMarlEnv(Environment):
    """Adapter from a jaxmarl `MultiAgentEnv` (dicts keyed by agent name) to wqmix's protocol.

    - obs: the agents' observation vectors, stacked (agents, obs_dim);
    - state: SMAX's `world_state` (with `smac_state`, scaled as SMAC's: `smac_world_state`);
      otherwise the concatenated observations (as JaxMARL's `CTRolloutManager` does);
    - avail: SMAX's masks; envs without masks (MPE) have every action available;
    - reward: SMAX's shared reward (times `reward_scale`); MPE's summed over agents
      (`CTRolloutManager`'s global reward);
    - `step_env` is called directly, so jaxmarl does not auto-reset: the episode's last state
      stays observable. SMAX: terminated when either team is wiped out (won = every enemy dead)
      and, with `time_limit_terminal` (the official SMAC setting), at its `max_steps` too, else
      truncated there; MPE: only ever truncated, at `max_steps`.
    """

    def __init__(self, env: Any, kind: Literal["smax", "mpe"], reward_scale: float,
                 time_limit_terminal: bool = False, smac_state: bool = False):
        self.env, self.kind, self.reward_scale = env, kind, reward_scale
        self.time_limit_terminal, self.smac_state = time_limit_terminal, smac_state
        self.reports_wins = kind == "smax"
        self.agents = list(env.agents)
        obs, state = env.reset(jax.random.key(0))
        num_actions = {int(env.action_space(a).n) for a in self.agents}
        obs_dims = {int(np.prod(obs[a].shape)) for a in self.agents}
        if len(num_actions) != 1 or len(obs_dims) != 1:
            raise ValueError("wqmix's shared agent network needs every agent to have the same observation "
                             f"size and action count; got sizes {obs_dims} and actions {num_actions}")
        self._max_steps = int(env.max_steps)
        probe = self._timestep(obs, state, jnp.zeros(()), jnp.asarray(False))
        state_dim = int(probe.state.shape[0])
        # SMAX's world state: per unit (allies first) 4 + unit-type features, then each unit's team and type.
        unit_dim = state_dim // int(state.state.unit_positions.shape[0]) - 2 if kind == "smax" else None
        self.spec = EnvSpec(num_agents=len(self.agents), obs_dim=obs_dims.pop(), state_dim=state_dim,
                            num_actions=num_actions.pop(), time_limit=self._max_steps, state_unit_dim=unit_dim)

    def _outcome(self, env_state: Any) -> tuple[jax.Array, jax.Array]:
        """(an ally is alive, an enemy is alive) for SMAX."""
        alive = env_state.state.unit_alive
        n = len(self.agents)
        return jnp.any(alive[:n]), jnp.any(alive[n:])

    def _timestep(self, obs: dict, env_state: Any, reward: jax.Array, done: jax.Array) -> TimeStep:
        agent_obs = jnp.stack([obs[a].reshape(-1) for a in self.agents]).astype(jnp.float32)
        if self.kind == "smax":
            state = obs["world_state"].reshape(-1).astype(jnp.float32)
            if self.smac_state:
                state = smac_world_state(self.env, env_state.state, state)
            masks = self.env.get_avail_actions(env_state)
            avail = jnp.stack([masks[a] for a in self.agents]).astype(bool)
            allies_alive, enemies_alive = self._outcome(env_state)
            terminated = done if self.time_limit_terminal else done & (~allies_alive | ~enemies_alive)
            won = done & ~enemies_alive
        else:
            state = agent_obs.reshape(-1)
            avail = jnp.ones((len(self.agents), int(self.env.action_space(self.agents[0]).n)), bool)
            terminated = jnp.asarray(False)
            won = jnp.asarray(False)
        return TimeStep(obs=agent_obs, state=state, avail=avail, reward=jnp.asarray(reward, jnp.float32),
                        terminated=terminated, truncated=done & ~terminated, won=won)

    def reset(self, key: jax.Array) -> tuple[Any, TimeStep]:
        obs, env_state = self.env.reset(key)
        return env_state, self._timestep(obs, env_state, jnp.zeros(()), jnp.asarray(False))

    def step(self, key: jax.Array, env_state: Any, actions: jax.Array) -> tuple[Any, TimeStep]:
        actions = jnp.asarray(actions, jnp.int32)
        inner = env_state.state if self.kind == "smax" else env_state
        if self.kind == "smax":
            # SMAC rejects unavailable actions; jaxmarl would record a masked attack in
            # `prev_attack_actions` (teammates observe it). Ours: it becomes "stop".
            masks = self.env.get_avail_actions(env_state)
            avail = jnp.stack([masks[a] for a in self.agents]).astype(bool)
            legal = avail[jnp.arange(len(self.agents)), actions]
            actions = jnp.where(legal, actions, self.env.num_movement_actions - 1)
        action_dict = {a: actions[i] for i, a in enumerate(self.agents)}
        obs, env_state, rewards, dones, _ = self.env.step_env(key, env_state, action_dict)
        if self.kind == "smax":
            reward = rewards[self.agents[0]] * self.reward_scale
        else:
            reward = sum(rewards[a] for a in self.agents) * self.reward_scale
        # jaxmarl ends an episode when the step counter, read before it is incremented, reaches
        # max_steps: one step late. Ours ends it after exactly max_steps steps.
        done = dones["__all__"] | (inner.step + 1 >= self._max_steps)
        return env_state, self._timestep(obs, env_state, reward, done)


FIRST_AGENT_REWARD = ("smax", "overcooked", "hanabi")
"""jaxmarl env names whose agents share one reward: JaxMARL's `CTRolloutManager` takes the first
agent's as the team reward there, and the sum of the agents' rewards everywhere else."""


def looks_like_jaxmarl(env: Any) -> bool:
    """True for an object with JaxMARL's `MultiAgentEnv` API (`agents`, `reset(key)`,
    `step_env` or `step`, `action_space(agent)`), whether or not it subclasses jaxmarl's class."""
    return (not isinstance(env, Environment) and isinstance(getattr(env, "agents", None), (list, tuple))
            and all(callable(getattr(env, name, None)) for name in ("reset", "action_space"))
            and (callable(getattr(env, "step_env", None)) or callable(getattr(env, "step", None))))


def _mask_function(env: Any, env_state: Any) -> Any:
    """The env's own action masks, `get_avail_actions(state)` (Hanabi: `get_legal_moves`), as a
    function of the state; None where the env has none (jaxmarl's base class raises)."""
    for name in ("get_avail_actions", "get_legal_moves"):
        function = getattr(env, name, None)
        if not callable(function):
            continue
        try:
            function(env_state)
        except (NotImplementedError, AttributeError, TypeError):
            continue
        return function
    return None


class JaxMarlApiEnv(Environment):
    """Adapter from any env with JaxMARL's `MultiAgentEnv` API to wqmix's protocol, as JaxMARL's
    `CTRolloutManager` presents it to its QMIX baseline:

    - obs: each agent's observation flattened and zero-padded to the longest (agents, obs_dim);
      action counts padded to the largest with actions that are never available
      (`wqmix.envs.padding`);
    - avail: the env's `get_avail_actions` (`get_legal_moves` for Hanabi) where it has one, else
      every one of the agent's own actions;
    - state: the `world_state` observation where the env gives one (`state="auto"`), else the
      padded observations concatenated;
    - reward: the agents' rewards summed, or the first agent's (`reward`; "auto" as
      `CTRolloutManager`: `FIRST_AGENT_REWARD`);
    - ends: `step_env` is called (no auto-reset), so the last state stays observable. An
      episode that reaches `time_limit` steps is truncated there (bootstrapped), whatever the
      env says; `dones["__all__"]` before that is terminated. The adapter counts steps itself:
      env state = (the env's state, steps taken).
    """

    def __init__(self, env: Any, time_limit: int, reward: str, state: str, field: str, value: str):
        self.env = env
        self.agents = [a for a in env.agents]
        for agent in self.agents:
            space = env.action_space(agent)
            if not hasattr(space, "n"):
                raise ConfigError(field, value, f"agent {agent!r} has a continuous or non-discrete action space "
                                  f"({type(space).__name__}); wqmix's value-based learners need discrete actions")
        obs, env_state = env.reset(jax.random.key(0))
        self.shapes = AgentShapes(tuple(self.agents), tuple(int(np.prod(np.shape(obs[a]))) for a in self.agents),
                                  tuple(int(env.action_space(a).n) for a in self.agents))
        self.padded = self.shapes.padded()
        self._masks = _mask_function(env, env_state)
        if state == "world_state" and "world_state" not in obs:
            raise ConfigError("env.state", state, f"{value} gives no world_state observation; use auto or observations")
        self._world_state = state != "observations" and "world_state" in obs
        limit = time_limit or int(getattr(env, "max_steps", 0) or 0)
        if limit <= 0:
            raise ConfigError("env.time_limit", time_limit, f"{value} has no max_steps: set the longest episode")
        env_name = str(getattr(env, "name", type(env).__name__)).lower()
        self._first_agent_reward = (reward == "first"
                                    or (reward == "auto" and any(k in env_name for k in FIRST_AGENT_REWARD)))
        self._step = env.step_env if callable(getattr(env, "step_env", None)) else env.step
        probe = self._timestep(obs, env_state, jnp.zeros(()), jnp.asarray(False), jnp.asarray(False))
        self.spec = EnvSpec(num_agents=len(self.agents), obs_dim=self.shapes.obs_dim,
                            state_dim=int(probe.state.shape[0]), num_actions=self.shapes.num_actions,
                            time_limit=limit)

    def _timestep(self, obs: dict, env_state: Any, reward: jax.Array, terminated: jax.Array,
                  truncated: jax.Array) -> TimeStep:
        agent_obs = stack_padded([obs[a] for a in self.agents], self.shapes.obs_dim, jnp)  # (agents, obs_dim)
        own = self._masks(env_state) if self._masks is not None else {}
        avail = stack_masks([own.get(a) for a in self.agents], self.shapes, jnp)  # (agents, actions)
        state = obs["world_state"].reshape(-1).astype(jnp.float32) if self._world_state else agent_obs.reshape(-1)
        return TimeStep(obs=agent_obs, state=state, avail=avail, reward=jnp.asarray(reward, jnp.float32),
                        terminated=terminated, truncated=truncated, won=jnp.asarray(False))

    def reset(self, key: jax.Array) -> tuple[Any, TimeStep]:
        obs, env_state = self.env.reset(key)
        false = jnp.asarray(False)
        return (env_state, jnp.zeros((), jnp.int32)), self._timestep(obs, env_state, jnp.zeros(()), false, false)

    def step(self, key: jax.Array, env_state: Any, actions: jax.Array) -> tuple[Any, TimeStep]:
        inner, steps = env_state
        actions = jnp.asarray(actions, jnp.int32)
        if min(self.shapes.action_counts) < self.shapes.num_actions:
            # A padded action is never available, so agents never choose one; were one given, the
            # env gets the agent's first available action instead of an index it does not have.
            # (Only where some agent has padded actions: it reads the masks once more per step.)
            own = self._masks(inner) if self._masks is not None else {}
            first = jnp.argmax(stack_masks([own.get(a) for a in self.agents], self.shapes, jnp), axis=-1)
            actions = jnp.where(actions < jnp.asarray(self.shapes.action_counts), actions, first)
        obs, inner, rewards, dones, _ = self._step(key, inner, {a: actions[i] for i, a in enumerate(self.agents)})
        if self._first_agent_reward:
            reward = rewards[self.agents[0]]
        else:
            reward = sum(rewards[a] for a in self.agents)
        steps = steps + 1
        truncated = steps >= self.spec.time_limit
        terminated = jnp.asarray(dones["__all__"], bool) & ~truncated
        return (inner, steps), self._timestep(obs, inner, reward, terminated, truncated)

    def raw_random_policy(self) -> tuple[Any, Any]:
        """(reset(key) -> env state, step(key, env state) -> (env state, outputs)): the env
        alone, without this adapter, each agent taking a uniformly random one of its own actions
        (masks ignored); outputs are the env's (observations, rewards, dones). `wqmix bench`
        times it beside acting, as the env's own rate."""
        counts = self.shapes.action_counts

        def reset(key: jax.Array) -> Any:
            return self.env.reset(key)[1]

        def step(key: jax.Array, env_state: Any) -> Any:
            keys = jax.random.split(key, len(self.agents) + 1)
            actions = {a: jax.random.randint(keys[i], (), 0, counts[i]) for i, a in enumerate(self.agents)}
            obs, env_state, rewards, dones, _ = self._step(keys[-1], env_state, actions)
            return env_state, (obs, rewards, dones)

        return reset, step


def from_jaxmarl(env: Any, time_limit: int, reward: str, state: str, field: str, value: str) -> JaxMarlApiEnv:
    """`env` (JaxMARL's `MultiAgentEnv` API) in wqmix's protocol; `field` and `value` name the
    setting that chose it in a one-line error."""
    return JaxMarlApiEnv(env, time_limit, reward, state, field, value)
