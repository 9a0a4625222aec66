"""Settings of the env families a user brings (`--env jaxmarl | jumanji | jax | gym | smac-api`);
imports no JAX and no env package until `make` is called.

Each family names its env by `id` (a registry id: jaxmarl's, Jumanji's, Gymnasium's) or by
`factory` ("package.module:callable"), with keyword arguments as a JSON object in `kwargs`.
(`env.name` is wqmix's own registry name of the family, e.g. "jaxmarl", so the env's id is
`env.id`.) Agents of different observation sizes or action counts are padded
(`wqmix.envs.padding`) in every family.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from wqmix.envs.configs import check_factory, import_jaxmarl, jaxmarl_env_ids, load_factory, parse_kwargs
from wqmix.errors import ConfigError

if TYPE_CHECKING:
    from wqmix.envs.base import Environment, HostEnvironment

__all__ = ["JaxMarlConfig", "JumanjiConfig", "JaxFactoryConfig", "GymConfig", "SmacApiConfig"]


def require_package(path: str, value: Any, package: str, extra: str) -> None:
    """The one-line ConfigError naming `path` when `package` is not installed."""
    if importlib.util.find_spec(package) is None:
        raise ConfigError(path, value, f"needs the {package!r} package: pip install 'wqmix[{extra}]'")


def _check_time_limit(path: str, value: int) -> None:
    if value < 0:
        raise ConfigError(path, value, "must be >= 0 (0: the env's own episode limit)")


@dataclass(frozen=True)
class JaxMarlConfig:
    """Any registered jaxmarl env with discrete actions (`--env jaxmarl --env.id ID`), compiled end
    to end. SMAX and MPE spread keep their own presets (`--env smax`, `--env mpe-spread`)."""

    name: ClassVar[str] = "jaxmarl"
    id: str = "MPE_simple_speaker_listener_v4"
    """jaxmarl's registry id (`jaxmarl.registered_envs`). Default: ours (a cooperative MPE task
    whose two agents differ in observation size and action count)."""
    kwargs: str = "{}"
    """Keyword arguments of `jaxmarl.make`, as a JSON object. Default: the env's own."""
    time_limit: int = 0
    """Longest episode in steps; 0: the env's own `max_steps`. An episode still running there is
    cut (truncated). Default: the env's own."""
    reward: Literal["auto", "sum", "first"] = "auto"
    """Team reward from the agents' rewards: "sum", or the "first" agent's (envs whose agents
    share one reward). "auto": as JaxMARL's QMIX baseline takes it (`CTRolloutManager`: the
    first agent's for SMAX, Overcooked and Hanabi, else the sum). Default: JaxMARL's baseline."""
    state: Literal["auto", "world_state", "observations"] = "auto"
    """The mixer's input: the env's `world_state` observation, or the agents' (padded)
    observations concatenated; "auto": `world_state` where the env gives one. Default: as
    JaxMARL's `CTRolloutManager`."""

    def validate(self, path: str) -> None:
        parse_kwargs(f"{path}.kwargs", self.kwargs)
        _check_time_limit(f"{path}.time_limit", self.time_limit)
        registered = jaxmarl_env_ids()
        if self.id not in registered:
            raise ConfigError(f"{path}.id", self.id, "must be a jaxmarl env id: " + ", ".join(registered))

    def make(self) -> "Environment":
        from wqmix.envs.jaxmarl_envs import from_jaxmarl  # imported here: imports JAX

        env = import_jaxmarl().make(self.id, **parse_kwargs("env.kwargs", self.kwargs))
        return from_jaxmarl(env, self.time_limit, self.reward, self.state, field="env.id", value=self.id)


@dataclass(frozen=True)
class JaxFactoryConfig:
    """Your own JAX env (`--env jax --env.factory pkg.module:make`): the callable returns an env in
    wqmix's `Environment` protocol or in JaxMARL's `MultiAgentEnv` API (told apart by what it
    has), compiled end to end as the built-in envs."""

    name: ClassVar[str] = "jax"
    factory: str = "wqmix.envs.signalling:make"
    """"package.module:callable". Default: ours (the built-in signalling game, two agent types
    in JaxMARL's API)."""
    kwargs: str = "{}"
    """Keyword arguments of the factory, as a JSON object. Default: none."""
    time_limit: int = 0
    """JaxMARL-API envs: as `JaxMarlConfig.time_limit`. wqmix envs carry their own in `spec`."""
    reward: Literal["auto", "sum", "first"] = "auto"
    """JaxMARL-API envs: as `JaxMarlConfig.reward`."""
    state: Literal["auto", "world_state", "observations"] = "auto"
    """JaxMARL-API envs: as `JaxMarlConfig.state`."""

    def validate(self, path: str) -> None:
        parse_kwargs(f"{path}.kwargs", self.kwargs)
        _check_time_limit(f"{path}.time_limit", self.time_limit)
        check_factory(f"{path}.factory", self.factory)

    def make(self) -> "Environment":
        from wqmix.envs.base import Environment  # imported here: imports JAX
        from wqmix.envs.jaxmarl_envs import from_jaxmarl, looks_like_jaxmarl  # imported here: imports JAX

        env = load_factory(self.factory)(**parse_kwargs("env.kwargs", self.kwargs))
        if isinstance(env, Environment):
            return env
        if looks_like_jaxmarl(env):
            return from_jaxmarl(env, self.time_limit, self.reward, self.state, field="env.factory", value=self.factory)
        raise ConfigError("env.factory", self.factory,
                          f"returned a {type(env).__name__}, which is neither a wqmix.envs.Environment nor a "
                          "JaxMARL MultiAgentEnv (agents, reset(key), step(key, state, actions), action_space)")


@dataclass(frozen=True)
class JumanjiConfig:
    """A Jumanji multi-agent env with discrete actions (`--env jumanji --env.id ID`), compiled end
    to end."""

    name: ClassVar[str] = "jumanji"
    id: str = "LevelBasedForaging-v0"
    """Jumanji's registry id (`jumanji.registered_environments()`); multi-agent envs with
    (multi-)discrete actions: LevelBasedForaging-v0, RobotWarehouse-v0, ... Default: ours
    (level-based foraging, a benchmark env of the EPyMARL study)."""
    kwargs: str = "{}"
    """Keyword arguments of `jumanji.make`, as a JSON object, e.g. '{"time_limit": 50}'. Default:
    the env's own."""
    generator: str = "{}"
    """Keyword arguments of the env's own `RandomGenerator` (the layout: LBF's grid_size,
    num_agents, num_food, fov, max_agent_level, force_coop; RWARE's shelf_rows, shelf_columns,
    column_height, num_agents, sensor_range, request_queue_size), as a JSON object; `jumanji.make`
    takes a generator object, which a JSON `kwargs` cannot hold. Default: {}, the env's default
    generator (Jumanji's)."""

    def validate(self, path: str) -> None:
        parse_kwargs(f"{path}.kwargs", self.kwargs)
        parse_kwargs(f"{path}.generator", self.generator)
        require_package(f"{path}.id", self.id, "jumanji", "jumanji")
        import jumanji  # imported here: only when a Jumanji env is asked for

        registered = jumanji.registered_environments()
        if self.id not in registered:
            raise ConfigError(f"{path}.id", self.id, "must be a Jumanji env id: " + ", ".join(sorted(registered)))

    def make(self) -> "Environment":
        from wqmix.envs.jumanji_env import JumanjiEnv, make_jumanji  # imported here: imports JAX and Jumanji

        env = make_jumanji(self.id, parse_kwargs("env.kwargs", self.kwargs),
                           parse_kwargs("env.generator", self.generator), where="env")
        return JumanjiEnv(env, where="env.id", name=self.id)


@dataclass(frozen=True)
class GymConfig:
    """A Gymnasium multi-agent env with tuple observation and action spaces (`--env gym --env.id
    ID`), stepped on the host as EPyMARL steps them: level-based foraging (`lbforaging`), the
    multi-robot warehouse (`rware`)."""

    name: ClassVar[str] = "gym"
    id: str = "Foraging-8x8-2p-3f-v3"
    """Gymnasium's registry id; the package that registers it is imported first (the part of
    the id before ":" when there is one, else `lbforaging` and `rware`). Default: ours (an LBF
    task of the EPyMARL study's size)."""
    kwargs: str = "{}"
    """Keyword arguments of `gymnasium.make`, as a JSON object. Default: the env's own."""
    time_limit: int = 0
    """Longest episode in steps; 0: the env's own (`max_episode_steps` of its registration, else
    its `max_steps` / `_max_episode_steps`). Default: the env's own."""

    def validate(self, path: str) -> None:
        parse_kwargs(f"{path}.kwargs", self.kwargs)
        _check_time_limit(f"{path}.time_limit", self.time_limit)
        require_package(f"{path}.id", self.id, "gymnasium", "gym")

    def make(self) -> "HostEnvironment":
        from wqmix.envs.gym_env import make_gym  # imported here: imports the env's package

        return make_gym(self.id, parse_kwargs("env.kwargs", self.kwargs), self.time_limit)


@dataclass(frozen=True)
class SmacApiConfig:
    """Any env with SMAC's `MultiAgentEnv` API (`get_obs`, `get_state`, `get_avail_actions`,
    `step(actions) -> (reward, terminated, info)`, `get_env_info`), stepped on the host as pymarl
    steps it (`--env smac-api --env.factory pkg.module:make`). SMAC itself:
    `--env.factory smac.env:StarCraft2Env --env.kwargs '{"map_name": "3m"}'` once SMAC and
    StarCraft II are installed from their own sources."""

    name: ClassVar[str] = "smac-api"
    factory: str = "wqmix.envs.smac_api:CountingGame"
    """"package.module:callable" returning the env. Default: ours (a small built-in game written
    to SMAC's API)."""
    kwargs: str = "{}"
    """Keyword arguments of the factory, as a JSON object. Default: none."""

    def validate(self, path: str) -> None:
        parse_kwargs(f"{path}.kwargs", self.kwargs)
        check_factory(f"{path}.factory", self.factory)

    def make(self) -> "HostEnvironment":
        from wqmix.envs.smac_api import SmacApiEnv  # imported here: imports NumPy only

        return SmacApiEnv(load_factory(self.factory)(**parse_kwargs("env.kwargs", self.kwargs)), where="env.factory",
                          source=self.factory)
