"""Typed, frozen configuration: one dataclass per section under one root `Config`.

Every default names its source in the field's docstring:
- "paper": Rashid et al., Weighted QMIX, NeurIPS 2020 (arXiv 2006.10800);
- "official": the authors' code, oxwhirl/wqmix (`src/config/default.yaml`, `algs/ow_qmix.yaml`);
- "pymarl2": hijkzzz/pymarl2, where it departs from the official code;
- "ours": a choice of this library.

Configs are checked by `validate` before anything is compiled. A bad value raises `ConfigError`
whose message is one line naming the field, the bad value and what would be valid.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from wqmix.envs.registry import ENV_CONFIGS, EnvConfig, env_config_for
from wqmix.errors import ConfigError

__all__ = ["Config", "ConfigError", "validate", "from_dict", "to_dict", "apply_override"]


MixerName = Literal["qmix", "vdn", "none"]
WeightingName = Literal["none", "ow", "cw"]


@dataclass(frozen=True)
class AlgoConfig:
    """What is learned and how the loss weighs it. `--algo NAME` picks one of `ALGORITHMS`."""

    mixer: MixerName = "qmix"
    """How agent utilities combine into Q_tot: monotonic QMIX mixer, VDN sum, or none
    (independent learners, IQL). Default: paper (WQMIX projects onto QMIX's monotonic class)."""
    central: bool = True
    """Learn the unrestricted central Q-hat* (its own agent RNN + feed-forward mixer) and take
    the targets from its target networks at online QMIX's greedy joint action. Default: paper."""
    weighting: WeightingName = "ow"
    """Weight of each squared TD error in the QMIX loss: none (w = 1), OW (optimistic:
    w = 1 where Q_tot < y, else alpha) or CW (central: w = 1 where the action is the greedy one
    or y > Q-hat*(s, greedy), else alpha). Default: paper's OW-QMIX."""
    alpha: float = 0.1
    """The weight given to the down-weighted transitions, in (0, 1]. Default: official
    `w: 0.1` (called alpha in the paper); the paper's README uses 0.5 on 3s5z."""
    gamma: float = 0.99
    """Discount factor in [0, 1]. Default: official."""
    td_lambda: float = 0.0
    """TD(lambda) mixing of the targets, in [0, 1]; 0 gives the one-step targets of the official
    code. pymarl2 uses 0.6. Default: official (one-step)."""
    qmix_loss_coef: float = 1.0
    """Coefficient of the weighted QMIX loss. Default: official (`qmix_loss: 1`)."""
    central_loss_coef: float = 1.0
    """Coefficient of the central Q-hat* loss. Default: official (`central_loss: 1`);
    pymarl2 uses 0.5."""
    target_update_interval: int = 200
    """Hard copy of every online network into its target every this many episodes.
    Default: official (`target_update_interval: 200`)."""

    @property
    def name(self) -> str:
        """The registered algorithm name with these settings, or "custom"."""
        for name, algo in ALGORITHMS.items():
            if (algo.mixer, algo.central, algo.weighting) == (self.mixer, self.central, self.weighting):
                return name
        return "custom"


ALGORITHMS: dict[str, AlgoConfig] = {
    "ow-qmix": AlgoConfig(mixer="qmix", central=True, weighting="ow"),
    "cw-qmix": AlgoConfig(mixer="qmix", central=True, weighting="cw"),
    "qmix": AlgoConfig(mixer="qmix", central=False, weighting="none"),
    "vdn": AlgoConfig(mixer="vdn", central=False, weighting="none"),
    "iql": AlgoConfig(mixer="none", central=False, weighting="none"),
    # The paper's ablation: the OW weighting alone, targets from QMIX's own target networks.
    "ow-qmix-no-central": AlgoConfig(mixer="qmix", central=False, weighting="ow"),
}
"""The algorithms `--algo` accepts. Defaults of the other fields are shared."""


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the networks (official `rnn_agent`, `qmix` and `qmix_central_no_hyper`)."""

    agent_hidden: int = 64
    """Width of the agent network's input layer and GRU. Default: official `rnn_hidden_dim`."""
    mixer_embed: int = 32
    """Width of the QMIX mixer's hidden layer. Default: official `mixing_embed_dim`."""
    hypernet_embed: int = 64
    """Hidden width of the QMIX hypernetworks. Default: official `hypernet_embed`."""
    central_agent_hidden: int = 64
    """Width of the central agent network. Default: official `central_rnn_hidden_dim`."""
    central_mixer_hidden: int = 256
    """Width of the central mixer's three hidden layers and of its V(s).
    Default: official `central_mixing_embed_dim`."""
    obs_last_action: bool = True
    """Feed each agent its previous action (one-hot). Default: official `obs_last_action`."""
    obs_agent_id: bool = True
    """Feed each agent its one-hot id (the agent network is shared). Default: official."""


@dataclass(frozen=True)
class TrainConfig:
    """Schedule of acting and learning. The defaults are the paper's protocol: one
    environment, one update on a batch of 32 episodes after each episode."""

    total_env_steps: int = 10_000
    """Stop once this many environment steps were taken (per seed). Default: official
    (`default.yaml`, `t_max: 10000`); the paper's larger tasks run for millions."""
    num_envs: int = 1
    """Environments stepped in parallel (vmap); each iteration collects one episode from each.
    Default: official (`batch_size_run: 1`)."""
    updates_per_iteration: int = 1
    """Gradient updates after each iteration of `num_envs` episodes. Default: official
    (`training_iters: 1`)."""
    batch_size: int = 32
    """Episodes per gradient update. Default: official. Learning starts once this many
    episodes are stored (official)."""
    buffer_size: int = 5000
    """Replay capacity in episodes. Default: official (`buffer_size: 5000`)."""


@dataclass(frozen=True)
class ExplorationConfig:
    """Linear epsilon schedule of masked epsilon-greedy acting."""

    epsilon_start: float = 1.0
    """Epsilon at step 0. Default: official."""
    epsilon_finish: float = 0.05
    """Epsilon after the anneal. Default: official."""
    epsilon_anneal_steps: int = 50_000
    """Env steps over which epsilon goes linearly from start to finish. Default: official and
    paper Fig. 2 (50k); many SMAC maps use 1M."""


@dataclass(frozen=True)
class OptimConfig:
    """One optimiser over all online parameters, with global gradient-norm clipping."""

    name: Literal["rmsprop", "adam"] = "rmsprop"
    """Default: official (RMSprop); pymarl2 uses Adam with lr 1e-3."""
    lr: float = 5e-4
    """Learning rate. Default: official."""
    rmsprop_decay: float = 0.99
    """RMSprop's smoothing constant (PyTorch's `alpha`). Default: official `optim_alpha`."""
    eps: float = 1e-5
    """Added to the denominator outside the square root, as in PyTorch. Default: official
    `optim_eps`."""
    grad_norm_clip: float = 10.0
    """Clip the global L2 norm of the gradient over all parameters. Default: official."""


@dataclass(frozen=True)
class LogConfig:
    """What the host does between compiled chunks."""

    num_chunks: int = 50
    """Training is split into this many compiled chunks; the host logs and draws the progress
    bar between them. Default: ours."""
    quiet: bool = False
    """No progress bar and no tables on the terminal. Default: ours."""
    tensorboard: bool = False
    """Also write TensorBoard event files (tensorboardX) under `tensorboard/seed_N/`. Default: ours."""
    wandb: bool = False
    """Also log to Weights & Biases (needs `pip install wandb`; not a dependency). Default: ours."""
    wandb_project: str = "wqmix"
    """W&B project name. Default: ours."""
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    """W&B mode; offline needs no login or network (`wandb sync` uploads later). Default: ours."""
    checkpoint_interval: int = 100_000
    """Save a checkpoint (whole training state) at the first chunk end after every this many env
    steps, and always at the end; 0: only at the end. Default: ours."""
    keep_checkpoints: int = 3
    """Checkpoints kept (the oldest are deleted). Default: ours."""
    test_episodes: int = 20
    """Greedy (epsilon = 0) test episodes per seed after every chunk (`test_return` in the
    metrics) and at the end (summary.json). Default: official (`test_nepisode: 20`)."""


@dataclass(frozen=True)
class Config:
    """Everything a run needs. `wqmix train` with no argument runs `Config()`: OW-QMIX on the
    paper's matrix game with the paper's uniform exploration."""

    env: EnvConfig = field(default_factory=lambda: ENV_CONFIGS["matrix-game"]())
    """The environment and its own settings; `--env NAME` picks one by its registry name."""
    algo: AlgoConfig = field(default_factory=lambda: ALGORITHMS["ow-qmix"])
    """Default: ours (OW-QMIX, the paper's main method); `--algo NAME` picks another."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    exploration: ExplorationConfig = field(
        default_factory=lambda: ExplorationConfig(epsilon_start=1.0, epsilon_finish=1.0)
    )
    """Uniform exploration (epsilon = 1 throughout) for the default matrix game (paper). Other
    envs start from the official 1.0 -> 0.05 anneal over 50k steps (`official_defaults`)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)
    seed: int = 0
    """Seed of the first run; seed s of a `num_seeds` run equals a single run with that seed."""
    num_seeds: int = 1
    """Independent seeds (seed, seed + 1, ...) trained together in one process by vmap."""


# --------------------------------------------------------------------------------------------
# Presets: whole configurations with a name.


def matrix_game_paper() -> Config:
    """The paper's non-monotonic matrix game with uniform exploration (epsilon = 1 throughout,
    paper) and the official learning settings: 10k one-step episodes (official `t_max`), one
    update of 32 episodes after each episode, alpha 0.1, targets copied every 200 episodes."""
    return Config()


def official_defaults(env_name: str) -> Config:
    """Environment `env_name` at its defaults with the official learning settings, epsilon
    annealed 1.0 -> 0.05 over 50k steps included (official `ow_qmix.yaml`)."""
    return dataclasses.replace(Config(), env=env_config_for(env_name), exploration=ExplorationConfig())


def predator_prey_paper() -> Config:
    """Predator-prey with the paper's hardest miscapture punishment (p = -2) and the paper's
    protocol: one env, one update of 32 episodes after each episode, epsilon annealed over 50k
    steps (paper Fig. 2), alpha 0.1, 1M env steps and 16 test episodes (official
    `pred_prey_punish.yaml`)."""
    config = official_defaults("predator-prey")
    return dataclasses.replace(config, train=dataclasses.replace(config.train, total_env_steps=1_000_000),
                               log=dataclasses.replace(config.log, test_episodes=16))


def predator_prey_fast() -> Config:
    """`predator-prey-paper` with 8 environments in parallel and one update per 8 episodes
    (pymarl2's parallel-runner protocol)."""
    config = predator_prey_paper()
    return dataclasses.replace(config, train=dataclasses.replace(config.train, num_envs=8))


PRESETS: dict[str, typing.Callable[[], Config]] = {
    "matrix-game-paper": matrix_game_paper,
    "predator-prey-paper": predator_prey_paper,
    "predator-prey-fast": predator_prey_fast,
}
"""Named presets for `--preset`. The default `Config()` is `matrix-game-paper`."""

ENV_PRESETS: dict[str, str] = {"matrix-game": "matrix-game-paper", "predator-prey": "predator-prey-paper"}
"""The preset `--env NAME` starts from; other envs start from `official_defaults(NAME)`."""


def env_default(env_name: str) -> Config:
    """What `--env NAME` starts from: the env's preset, else the official defaults."""
    if env_name in ENV_PRESETS:
        return preset(ENV_PRESETS[env_name])
    return official_defaults(env_name)


# --------------------------------------------------------------------------------------------
# Validation: types first, then ranges, then combinations.


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is tuple:
        return "a list"
    if annotation is type(None):
        return "null"
    return f"a {getattr(annotation, '__name__', str(annotation))}"


def _check_type(value: Any, annotation: Any, path: str) -> Any:
    """Return `value` as `annotation` (ints become floats, lists become tuples), or raise."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        if value in typing.get_args(annotation) and type(value) is not bool:
            return value
        raise ConfigError(path, value, f"must be {_type_name(annotation)}")
    if origin in (Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, path)
            except ConfigError:
                pass
        raise ConfigError(path, value, f"must be {_type_name(annotation)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, value, f"must be {_type_name(annotation)}")
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_type(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(path, value, f"must have {len(args)} entries")
        return tuple(_check_type(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, value, "must be true or false")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(path, value, "must be an integer")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(path, value, "must be a finite number")
            return float(value)
        raise ConfigError(path, value, "must be a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, value, "must be a string")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(path, value, "must be null")
    raise TypeError(f"unsupported annotation {annotation!r} at {path}")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _checked_section(section: Any, path: str) -> Any:
    """A copy of a dataclass section whose every field has been type-checked (and normalised)."""
    values = {}
    for name, annotation in _field_types(type(section)).items():
        value = getattr(section, name)
        if dataclasses.is_dataclass(value):
            values[name] = _checked_section(value, _join(path, name))
        else:
            values[name] = _check_type(value, annotation, _join(path, name))
    return dataclasses.replace(section, **values)


def _require(ok: bool, path: str, value: Any, valid: str) -> None:
    if not ok:
        raise ConfigError(path, value, valid)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _positive(section: Any, path: str, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        _require(value > 0, _join(path, name), value, "must be > 0")


def _unit_interval(section: Any, path: str, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        _require(0.0 <= value <= 1.0, _join(path, name), value, "must be in [0, 1]")


def validate(config: Config) -> Config:
    """Check every field of `config`; return it normalised (ints in float fields become floats,
    lists become tuples). Raises `ConfigError` with a one-line message."""
    if not isinstance(config.env, tuple(ENV_CONFIGS.values())):
        raise ConfigError("env", config.env, "must be one of " + ", ".join(ENV_CONFIGS))
    config = _checked_section(config, "")

    algo = config.algo
    _require(0.0 < algo.alpha <= 1.0, "algo.alpha", algo.alpha, "must be in (0, 1]")
    _unit_interval(algo, "algo", "gamma", "td_lambda")
    _require(algo.qmix_loss_coef >= 0, "algo.qmix_loss_coef", algo.qmix_loss_coef, "must be >= 0")
    _require(algo.central_loss_coef >= 0, "algo.central_loss_coef", algo.central_loss_coef, "must be >= 0")
    _positive(algo, "algo", "target_update_interval")
    if algo.weighting == "cw":
        _require(algo.central, "algo.weighting", algo.weighting,
                 "CW weighting needs the central estimator (set algo.central true, or use weighting 'ow' or 'none')")
    if algo.central:
        _require(algo.mixer != "none", "algo.central", algo.central,
                 "the central estimator needs a mixer: set algo.mixer to 'qmix' or 'vdn', or algo.central false")
        _require(algo.central_loss_coef > 0, "algo.central_loss_coef", algo.central_loss_coef,
                 "must be > 0 when algo.central is true (Q-hat* would never learn)")

    _positive(config.network, "network", "agent_hidden", "mixer_embed", "hypernet_embed",
              "central_agent_hidden", "central_mixer_hidden")
    _positive(config.train, "train", "total_env_steps", "num_envs", "updates_per_iteration",
              "batch_size", "buffer_size")
    _require(config.train.buffer_size >= config.train.batch_size, "train.buffer_size",
             config.train.buffer_size, f"must be >= train.batch_size ({config.train.batch_size})")
    _unit_interval(config.exploration, "exploration", "epsilon_start", "epsilon_finish")
    _require(config.exploration.epsilon_anneal_steps >= 0, "exploration.epsilon_anneal_steps",
             config.exploration.epsilon_anneal_steps, "must be >= 0")
    _positive(config.optim, "optim", "lr", "eps", "grad_norm_clip")
    _require(0.0 <= config.optim.rmsprop_decay < 1.0, "optim.rmsprop_decay",
             config.optim.rmsprop_decay, "must be in [0, 1)")
    _positive(config.log, "log", "num_chunks", "test_episodes", "keep_checkpoints")
    _require(config.log.checkpoint_interval >= 0, "log.checkpoint_interval", config.log.checkpoint_interval,
             "must be >= 0")
    _require(config.seed >= 0, "seed", config.seed, "must be >= 0")
    _positive(config, "", "num_seeds")
    config.env.validate("env")
    return config


# --------------------------------------------------------------------------------------------
# Building configs from JSON dictionaries and from `--section.field value` overrides.


def to_dict(config: Config) -> dict[str, Any]:
    """The full resolved config as plain JSON types (the env section carries its `name`)."""
    out = dataclasses.asdict(config)
    out["env"] = {"name": config.env.name, **out["env"]}
    out["algo"] = {"name": config.algo.name, **out["algo"]}
    return out


def _section_from_dict(cls: type, data: Any, path: str, base: Any = None) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(path, data, "must be a JSON object")
    base = base if base is not None else cls()
    valid = _field_types(cls)
    values = {}
    for key, value in data.items():
        if key not in valid:
            raise ConfigError(_join(path, key), value, "unknown key; valid keys: " + ", ".join(valid))
        current = getattr(base, key)
        if dataclasses.is_dataclass(current):
            values[key] = _section_from_dict(type(current), value, _join(path, key), current)
        else:
            values[key] = _check_type(value, valid[key], _join(path, key))
    return dataclasses.replace(base, **values)


def from_dict(data: dict[str, Any], base: Config | None = None) -> Config:
    """A validated `Config` from a JSON-like dict, such as a run's `config.json`. Keys not given
    keep the value of `base` (default `Config()`). `env.name` and `algo.name` select a registered
    environment and algorithm before their other keys apply."""
    if not isinstance(data, dict):
        raise ConfigError("config", data, "must be a JSON object")
    config = base if base is not None else Config()
    data = dict(data)
    env = data.pop("env", None)
    algo = data.pop("algo", None)
    if env is not None:
        if not isinstance(env, dict):
            raise ConfigError("env", env, "must be a JSON object")
        env = dict(env)
        name = env.pop("name", config.env.name)
        if name != config.env.name:
            config = with_env(config, name)
        config = dataclasses.replace(config, env=_section_from_dict(type(config.env), env, "env", config.env))
    if algo is not None:
        if not isinstance(algo, dict):
            raise ConfigError("algo", algo, "must be a JSON object")
        algo = dict(algo)
        name = algo.pop("name", None)
        if name is not None and name != "custom":
            config = with_algo(config, name)
        config = dataclasses.replace(config, algo=_section_from_dict(AlgoConfig, algo, "algo", config.algo))
    config = _section_from_dict(Config, data, "", config)
    return validate(config)


def with_env(config: Config, name: str) -> Config:
    """`config` with the environment replaced by the registered env `name` at its defaults."""
    return dataclasses.replace(config, env=env_config_for(name))


def with_algo(config: Config, name: str) -> Config:
    """`config` with the algorithm's defining fields set to the registered algorithm `name`;
    the shared fields (alpha, gamma, ...) are kept."""
    if name not in ALGORITHMS:
        raise ConfigError("algo", name, "must be one of " + ", ".join(ALGORITHMS))
    preset = ALGORITHMS[name]
    algo = dataclasses.replace(config.algo, mixer=preset.mixer, central=preset.central,
                               weighting=preset.weighting)
    return dataclasses.replace(config, algo=algo)


def preset(name: str) -> Config:
    """The named preset's config."""
    if name not in PRESETS:
        raise ConfigError("preset", name, "must be one of " + ", ".join(PRESETS))
    return PRESETS[name]()


def _parse_text(text: str, annotation: Any, path: str) -> Any:
    """Turn a command-line string into a value of the field's type (JSON for lists)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _parse_text(text, option, path)
            except ConfigError:
                pass
        raise ConfigError(path, text, f"must be {_type_name(annotation)}")
    if annotation is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(path, text, "must be true or false")
    if annotation is int:
        try:
            number = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ConfigError(path, text, "must be an integer") from None
        if isinstance(number, float) and not number.is_integer():
            raise ConfigError(path, text, "must be an integer")
        return int(number)
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(path, text, "must be a number") from None
    if annotation is type(None):
        if text.strip().lower() in ("none", "null"):
            return None
        raise ConfigError(path, text, "must be null")
    if origin is tuple:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(path, text, "must be a JSON list, e.g. [[8, -12], [-12, 0]]") from None
    return text  # str and Literal: checked by _check_type


def apply_override(config: Config, dotted: str, text: str) -> Config:
    """`config` with the field at `dotted` (e.g. "algo.alpha"; dashes may stand for
    underscores) set from the command-line string `text`."""
    parts = dotted.replace("-", "_").split(".")
    sections: list[Any] = [config]
    for depth, part in enumerate(parts):
        node = sections[-1]
        path = ".".join(parts[: depth + 1])
        valid = _field_types(type(node))
        if part not in valid:
            prefix = ".".join(parts[:depth])
            names = [f"{prefix}.{n}" if prefix else n for n in valid]
            raise ConfigError(path, text, "unknown key; valid keys: " + ", ".join(names))
        if depth == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(node, part)):
                raise ConfigError(path, text, "is a section; set one of its fields, e.g. "
                                  f"{path}.{dataclasses.fields(getattr(node, part))[0].name}")
            value = _check_type(_parse_text(text, valid[part], path), valid[part], path)
            new = dataclasses.replace(node, **{part: value})
            for parent, name in zip(reversed(sections[:-1]), reversed(parts[:depth])):
                new = dataclasses.replace(parent, **{name: new})
            return new
        child = getattr(node, part)
        if not dataclasses.is_dataclass(child):
            raise ConfigError(path, text, f"is a value, not a section; set it with --{path}")
        sections.append(child)
    raise AssertionError("unreachable")
