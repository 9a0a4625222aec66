"""The environments' typed settings; imports no JAX.

One frozen dataclass per registered environment (`name`, `validate`, `make`). `make` imports the
environment's module (and so JAX) only when it is called, so that validating a config or a sweep
spec stays fast. The environment modules re-export these names.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

from wqmix.envs.payoffs import PAPER_PAYOFF
from wqmix.errors import ConfigError

if TYPE_CHECKING:
    from wqmix.envs.jaxmarl_envs import JaxMarlEnv
    from wqmix.envs.matrix_game import MatrixGame
    from wqmix.envs.pettingzoo_env import PettingZooEnv
    from wqmix.envs.predator_prey import PredatorPrey

__all__ = ["PAPER_PAYOFF", "MatrixGameConfig", "PredatorPreyConfig", "SmaxConfig", "MpeSpreadConfig",
           "PettingZooConfig", "load_factory"]



@dataclass(frozen=True)
class MatrixGameConfig:
    """Settings of the matrix game (`--env matrix-game`)."""

    name: ClassVar[str] = "matrix-game"
    payoff: tuple[tuple[float, ...], ...] = PAPER_PAYOFF
    """Square payoff matrix: agent 0 picks the row, agent 1 the column. Default: paper Table 1a."""
    state_dim: int = 5
    """Length of the constant all-ones state, which is also each agent's observation.
    Default: official (`matrix_game_simple.py`: `np.ones(5)`)."""

    def validate(self, path: str) -> None:
        n = len(self.payoff)
        for i, row in enumerate(self.payoff):
            if len(row) != n:
                raise ConfigError(f"{path}.payoff", self.payoff,
                                  f"must be square: row {i} has {len(row)} entries, there are {n} rows")
            if not all(math.isfinite(v) for v in row):
                raise ConfigError(f"{path}.payoff", self.payoff, "entries must be finite numbers")
        if n < 2:
            raise ConfigError(f"{path}.payoff", self.payoff, "must be a square matrix of at least 2x2")
        if self.state_dim <= 0:
            raise ConfigError(f"{path}.state_dim", self.state_dim, "must be > 0")

    def make(self) -> "MatrixGame":
        from wqmix.envs.matrix_game import MatrixGame  # imported here: imports JAX

        return MatrixGame(self.payoff, self.state_dim)


@dataclass(frozen=True)
class PredatorPreyConfig:
    """Settings of predator-prey with miscapture punishment (`--env predator-prey`)."""

    name: ClassVar[str] = "predator-prey"
    grid_size: int = 10
    """Side of the bounded square grid. Default: paper and official (`world_shape: [10, 10]`,
    `toroidal: False`)."""
    num_agents: int = 8
    """Number of predators (the learning agents). Default: paper and official (`n_agents: 8`)."""
    num_prey: int = 8
    """Number of prey. Default: paper and official (`n_stags: 8`, `n_hare: 0`)."""
    punishment: float = -2.0
    """Team reward for each prey that fewer than `agents_to_capture` (but at least one) agents
    try to catch in a step; must be <= 0. Default: paper's hardest setting and official
    (`miscapture_punishment: -2`); the paper also runs 0, -0.5, -1 and -1.5."""
    capture_reward: float = 10.0
    """Team reward for each captured prey. Default: paper and official (`reward_stag: 10`)."""
    time_limit: int = 200
    """Episode length limit in steps. Default: paper and official (`episode_limit: 200`)."""
    obs_radius: int = 2
    """Each agent sees the (2r+1) x (2r+1) cells around it. Default: paper (5 x 5 window) and
    official (`agent_obs: [2, 2]`)."""
    agents_to_capture: int = 2
    """How many adjacent agents must choose "catch" in the same step to capture a prey, in
    1..4. Default: paper and official (`capture_action_conditions: [2, 1]`, stags need 2)."""

    def validate(self, path: str) -> None:
        for field in ("grid_size", "num_agents", "num_prey", "time_limit"):
            value = getattr(self, field)
            if value < 1:
                raise ConfigError(f"{path}.{field}", value, "must be >= 1")
        if self.grid_size < 2:
            raise ConfigError(f"{path}.grid_size", self.grid_size, "must be >= 2")
        if self.obs_radius < 0:
            raise ConfigError(f"{path}.obs_radius", self.obs_radius, "must be >= 0")
        if not 1 <= self.agents_to_capture <= 4:
            raise ConfigError(f"{path}.agents_to_capture", self.agents_to_capture,
                              "must be in 1..4 (a prey has four neighbour cells)")
        if self.num_agents < self.agents_to_capture:
            raise ConfigError(f"{path}.num_agents", self.num_agents,
                              f"must be >= agents_to_capture ({self.agents_to_capture}), "
                              "or no prey can ever be captured")
        cells = self.grid_size * self.grid_size
        if self.num_agents + self.num_prey > cells:
            raise ConfigError(f"{path}.num_prey", self.num_prey,
                              f"num_agents + num_prey ({self.num_agents} + {self.num_prey}) must fit "
                              f"on the {self.grid_size}x{self.grid_size} grid ({cells} cells)")
        if not (math.isfinite(self.punishment) and self.punishment <= 0):
            raise ConfigError(f"{path}.punishment", self.punishment, "must be a finite number <= 0")
        if not (math.isfinite(self.capture_reward) and self.capture_reward > 0):
            raise ConfigError(f"{path}.capture_reward", self.capture_reward, "must be a finite number > 0")

    def make(self) -> "PredatorPrey":
        from wqmix.envs.predator_prey import PredatorPrey  # imported here: imports JAX

        return PredatorPrey(self)


def import_jaxmarl():
    """Import jaxmarl (about 4 s, so only when a jaxmarl env is asked for), without the banner
    about submoduled environments that its import prints (silenced at the file-descriptor level:
    it bypasses `contextlib.redirect_stdout`)."""
    if "jaxmarl" in sys.modules:
        return sys.modules["jaxmarl"]
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        import jaxmarl  # imported here: 4 s, and only when a jaxmarl env is asked for

        sys.stdout.flush()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    return jaxmarl


def _jaxmarl_constant(parts: tuple[str, ...], variable: str) -> tuple[str, ...] | None:
    """The names of a list or dict literal `variable` in jaxmarl's source file `parts` (relative
    to its package), read without importing jaxmarl (4 s: too slow for validating a config or a
    sweep); None when it cannot be read."""
    import ast  # imported here: only when reading jaxmarl's source
    import importlib.util  # imported here: only when reading jaxmarl's source

    try:
        spec = importlib.util.find_spec("jaxmarl")
        source = os.path.join(spec.submodule_search_locations[0], *parts)
        with open(source) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, (ast.Dict, ast.List))
                    and any(getattr(t, "id", None) == variable for t in node.targets)):
                items = node.value.keys if isinstance(node.value, ast.Dict) else node.value.elts
                return tuple(ast.literal_eval(item) for item in items)
    except (AttributeError, ImportError, OSError, SyntaxError, TypeError, ValueError):
        pass
    return None


def _smax_map_names() -> tuple[str, ...]:
    """The keys of jaxmarl's `MAP_NAME_TO_SCENARIO`, from its source (else by importing it)."""
    names = _jaxmarl_constant(("environments", "smax", "smax_env.py"), "MAP_NAME_TO_SCENARIO")
    if names is not None:
        return names
    import_jaxmarl()
    from jaxmarl.environments.smax.smax_env import MAP_NAME_TO_SCENARIO  # imported here: only when a jaxmarl env is asked for

    return tuple(MAP_NAME_TO_SCENARIO)


def jaxmarl_env_ids() -> tuple[str, ...]:
    """jaxmarl's `registered_envs`, from its source (else by importing it)."""
    names = _jaxmarl_constant(("registration.py",), "registered_envs")
    return names if names is not None else tuple(import_jaxmarl().registered_envs)


@dataclass(frozen=True)
class SmaxConfig:
    """SMAX battles (`--env smax --env.map 3m`): JaxMARL's SMAC re-implementation against its
    heuristic enemy. Numbers are not comparable with SMAC's."""

    name: ClassVar[str] = "smax"
    map: str = "3m"
    """Scenario name (jaxmarl's SMAX maps: 3m, 2s3z, 3s5z, 5m_vs_6m, MMM, 3s_vs_5z, ...).
    Default: ours (the smallest SMAC-style battle)."""
    reward_scale: float = 10.0
    """SMAX rewards are scaled by this to SMAC's range. Default: JaxMARL's `ql_rnn_smax`
    (`REW_SCALE: 10`)."""
    see_enemy_actions: bool = True
    """Default: JaxMARL's `ql_rnn_smax` ENV_KWARGS."""
    walls_cause_death: bool = True
    """Default: JaxMARL's `ql_rnn_smax` ENV_KWARGS."""
    attack_mode: Literal["closest", "random"] = "closest"
    """How the heuristic enemy picks targets. Default: JaxMARL's `ql_rnn_smax` ENV_KWARGS."""
    time_limit_terminal: bool = True
    """A battle that reaches the time limit is terminal: its last target does not bootstrap.
    Default: official (`sc2.yaml`: `continuing_episode: False`; pymarl's episode runner then
    stores `terminated` on the time-limit step). False: a time-limit cut, bootstrapped from the
    next state, as every other wqmix env."""
    state: Literal["smac", "raw"] = "smac"
    """The mixer's state. "smac": SMAX's `world_state` with each living unit's position centred
    and divided by half the map size and its weapon cooldown divided by its type's (clipped to
    [0, 1]), so the units' features lie in [-1, 1] as in SMAC's `get_state`, which the official
    code mixes on (jaxmarl's team and type indices after them are kept). "raw": `world_state` as
    JaxMARL gives it and its QMIX uses it (positions in map units, up to 32; cooldowns in
    seconds, below 0 while a unit holds fire). Default: official (SMAC's scale). Measured here:
    on the raw state QMIX starts at Q_tot ~ 28 with gradient norms ~ 8,000 on 3m and diverges
    (docs/results/smax-300k-raw-state)."""

    def validate(self, path: str) -> None:
        names = _smax_map_names()
        if self.map not in names:
            raise ConfigError(f"{path}.map", self.map, "must be one of " + ", ".join(names))
        if self.reward_scale <= 0:
            raise ConfigError(f"{path}.reward_scale", self.reward_scale, "must be > 0")

    def make(self) -> "JaxMarlEnv":
        from wqmix.envs.jaxmarl_envs import JaxMarlEnv  # imported here: imports JAX

        jaxmarl = import_jaxmarl()
        from jaxmarl.environments.smax import map_name_to_scenario  # imported here: only when a jaxmarl env is asked for

        env = jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario(self.map),
                           see_enemy_actions=self.see_enemy_actions, walls_cause_death=self.walls_cause_death,
                           attack_mode=self.attack_mode)
        return JaxMarlEnv(env, kind="smax", reward_scale=self.reward_scale,
                          time_limit_terminal=self.time_limit_terminal, smac_state=self.state == "smac")


@dataclass(frozen=True)
class MpeSpreadConfig:
    """MPE simple_spread (`--env mpe-spread`): agents cover landmarks; discrete actions, all
    always available; the mixer's state is the concatenation of the observations."""

    name: ClassVar[str] = "mpe-spread"
    num_agents: int = 3
    """Default: jaxmarl `MPE_simple_spread_v3`."""
    num_landmarks: int = 3
    """Default: jaxmarl `MPE_simple_spread_v3`."""
    local_ratio: float = 0.5
    """Share of each agent's reward that is its own collision penalty. Default: jaxmarl."""
    max_steps: int = 25
    """Episode length (time limit). Default: jaxmarl / PettingZoo MPE (25)."""

    def validate(self, path: str) -> None:
        for field in ("num_agents", "num_landmarks", "max_steps"):
            if getattr(self, field) <= 0:
                raise ConfigError(f"{path}.{field}", getattr(self, field), "must be > 0")
        if not 0.0 <= self.local_ratio <= 1.0:
            raise ConfigError(f"{path}.local_ratio", self.local_ratio, "must be in [0, 1]")

    def make(self) -> "JaxMarlEnv":
        from wqmix.envs.jaxmarl_envs import JaxMarlEnv  # imported here: imports JAX

        env = import_jaxmarl().make("MPE_simple_spread_v3", num_agents=self.num_agents,
                              num_landmarks=self.num_landmarks, local_ratio=self.local_ratio,
                              max_steps=self.max_steps)
        return JaxMarlEnv(env, kind="mpe", reward_scale=1.0)


def load_factory(spec: str) -> Callable[..., Any]:
    """The callable named by "package.module:attribute"."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError("must look like package.module:function")
    module = importlib.import_module(module_name)
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"{module_name} has no callable {attribute!r}")
    return factory


def parse_kwargs(path: str, text: str) -> dict[str, Any]:
    """`text` as a JSON object, or the one-line ConfigError naming `path`."""
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(path, text, f"must be a JSON object ({e.msg})") from None
    if not isinstance(kwargs, dict):
        raise ConfigError(path, text, "must be a JSON object, e.g. '{\"max_steps\": 50}'")
    return kwargs


def check_factory(path: str, spec: str) -> None:
    """The one-line ConfigError naming `path` unless `spec` names an importable callable."""
    try:
        load_factory(spec)
    except ModuleNotFoundError as e:
        raise ConfigError(path, spec, f"cannot import {e.name!r} (is its package installed?)") from None
    except (ValueError, ImportError) as e:
        raise ConfigError(path, spec, str(e)) from None


@dataclass(frozen=True)
class PettingZooConfig:
    """A PettingZoo parallel environment (`--env pettingzoo`)."""

    name: ClassVar[str] = "pettingzoo"
    factory: str = "mpe2.simple_spread_v3:parallel_env"
    """"package.module:callable" returning a `ParallelEnv` with discrete actions. Default: ours
    (MPE simple_spread from the `mpe2` package, a cooperative PettingZoo env)."""
    kwargs: str = '{"max_cycles": 25, "continuous_actions": false}'
    """Keyword arguments of the factory, as a JSON object. Default: ours (simple_spread's 25 steps)."""
    time_limit: int = 25
    """Longest episode in steps (episodes are padded to it); an episode that runs longer is cut
    there and counted as truncated. Default: simple_spread's `max_cycles`."""
    state: Literal["auto", "env", "observations"] = "auto"
    """The mixer's state: `env.state()` ("env"), the concatenated observations
    ("observations"), or `env.state()` when the env implements it, else the observations ("auto").
    Default: ours."""
    noop_action: int = 0
    """The one action left available to an agent that has left the episode. Default: ours."""
    reward: Literal["sum", "mean"] = "sum"
    """Team reward from the agents' rewards. Default: sum, as JaxMARL's `CTRolloutManager`."""

    def validate(self, path: str) -> None:
        parse_kwargs(f"{path}.kwargs", self.kwargs)
        check_factory(f"{path}.factory", self.factory)
        if self.time_limit <= 0:
            raise ConfigError(f"{path}.time_limit", self.time_limit, "must be > 0")
        if self.noop_action < 0:
            raise ConfigError(f"{path}.noop_action", self.noop_action, "must be >= 0")

    def make(self) -> "PettingZooEnv":
        from wqmix.envs.pettingzoo_env import PettingZooEnv  # imported here: imports JAX

        env = load_factory(self.factory)(**parse_kwargs("env.kwargs", self.kwargs))
        return PettingZooEnv(env, time_limit=self.time_limit, state=self.state, noop_action=self.noop_action,
                             reward=self.reward)
