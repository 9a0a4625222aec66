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
WeightingName = Literal["none", "ow", "cw", "greedy-only"]
ProjectorKind = Literal["none", "state", "state-action"]
OmegaMode = Literal["constant", "advantage", "learned"]


@dataclass(frozen=True)
class ProjectorConfig:
    """The seed document's additive "weighted projector" (`shared/seeds/000_...txt`; NOT the
    paper's algorithm): Q_tot(s, u) = Q_mono(s, u) + sum_k omega_k * Q_proj,k(s), with Q_mono
    the QMIX mixer and Q_proj a small MLP. With `kind` "none" (every paper algorithm) nothing
    here is used. The tricks (`last_layer_init` .. `normalization`) are off by default."""

    kind: ProjectorKind = "none"
    """none; state: Q_proj(s) = Linear(s -> mixer width) -> ReLU -> Linear(-> 1) (seed, section
    4); state-action: Q_proj(s, u) on s || one-hot joint action (seed, extension 9.1; then
    per-agent greedy acting no longer maximises Q_tot). Default: none (paper algorithms)."""
    omega: OmegaMode = "constant"
    """constant: omega = `omega_value` (seed's code, `self.omega`); advantage: omega(s, u) =
    |A| / (running mean of |A| + 1e-6), A = Q_mono(s, u) - V(s), V(s) = E_u[Q_mono(s, u)] under
    uniform available joint actions (seed's text, 2.3), a constant for the gradient; learned:
    omega_k(s) = sigmoid(Linear(s -> mixer width) -> ReLU -> Linear(-> heads)) (seed, 9.2).
    Default: seed's code."""
    omega_value: float = 1.0
    """omega in the constant mode, and omega_max when annealed (a factor on every mode).
    Default: seed's code (`omega = 1.0`)."""
    heads: int = 1
    """Projector heads in the ensemble, Q_tot = Q_mono + sum_k omega_k Q_proj,k (seed, 9.3).
    Default: seed's code (one head)."""
    value_samples: int = 32
    """V(s) for the advantage omega: exact over the joint actions when there are at most this
    many, else the mean over this many sampled joint actions (each agent uniform over its
    available actions). Default: ours."""
    advantage_rate: float = 0.01
    """Rate of the running mean of |A| over updates: m <- (1 - rate) m + rate * batch mean (the
    first update takes the batch mean). Default: ours (the seed gives no value)."""
    omega_anneal_steps: int | None = None
    """Trick: omega times 1 - exp(-updates / this), updates counted from 0 (seed, trick 2);
    None: off. Default: off."""
    last_layer_init: float | None = None
    """Trick: the projector's last layer uniform in +-this (seed, trick 1: 3e-3); None: PyTorch's
    default. Default: off."""
    clip: float | None = None
    """Trick: clip Q_proj to +-this (seed, trick 3: 10); None: off. Default: off."""
    lr: float | None = None
    """Trick: a learning rate of its own for the projector (and learned omega) parameters (seed,
    trick 4: 1e-4); None: the optimiser's. Default: off."""
    l2: float = 0.0
    """Trick: loss += l2 * sum of the squared projector parameters (seed, pitfall 8.3).
    Default: off (0)."""
    normalization: Literal["none", "layer"] = "none"
    """Trick: normalise the projector's hidden layer (seed, pitfall 8.1, says batch
    normalisation; LayerNorm is used because it needs no running statistics or train/eval mode
    inside the compiled update). Default: off."""


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
    w = 1 where Q_tot < y, else alpha), CW (central: w = 1 where the action is the greedy one
    or y > Q-hat*(s, greedy), else alpha), or greedy-only (the seed's text, 2.4, which calls it
    its "optimistic" loss: w = 1 where every agent's action is the argmax of its utility, else
    0; not the paper's OW). Default: paper's OW-QMIX."""
    alpha: float = 0.1
    """The weight given to the down-weighted transitions, in (0, 1]. Default: official
    `w: 0.1` (called alpha in the paper); the paper's README uses 0.5 on 3s5z, and `--algo`
    gives the ablations (`*-no-central`) the official `qmix_w.yaml`'s 0.5."""
    gamma: float = 0.99
    """Discount factor in [0, 1]. Default: official."""
    td_lambda: float = 0.0
    """TD(lambda) mixing of the targets, in [0, 1]; 0 gives the one-step targets of the official
    code. pymarl2 uses 0.6. Default: official (one-step)."""
    double_q: bool = True
    """Without the central estimator: bootstrap at online greedy actions valued by the target
    networks (true, official `double_q: True`) or at the target agents' own masked argmax (false,
    the seed's code: `target_agent_q.max(dim=-1)`). Default: official."""
    qmix_loss_coef: float = 1.0
    """Coefficient of the weighted QMIX loss. Default: official (`qmix_loss: 1`)."""
    central_loss_coef: float = 1.0
    """Coefficient of the central Q-hat* loss. Default: official (`central_loss: 1`);
    pymarl2 uses 0.5."""
    target_update: Literal["hard", "soft"] = "hard"
    """hard: copy every online network into its target every `target_update_interval`
    episodes (official); soft: after every update, target <- tau * online + (1 - tau) * target
    (Polyak; the seed's `_soft_update`). Default: official."""
    target_update_interval: int = 200
    """Hard copy of every online network into its target every this many episodes.
    Default: official (`target_update_interval: 200`)."""
    tau: float = 0.005
    """The soft update's rate, in (0, 1]. Default: seed (`tau = 0.005`)."""
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    """The seed's additive projector (not the paper's); off unless `projector.kind` is set."""

    @property
    def name(self) -> str:
        """The registered algorithm name with these settings, or "custom"."""
        for name, algo in ALGORITHMS.items():
            if algo.identity == self.identity:
                return name
        return "custom"

    @property
    def identity(self) -> tuple:
        """What makes the algorithm what it is: its `DEFINING_FIELDS`, of the projector only its
        kind and omega mode (its tricks are settings, like alpha)."""
        return (*(getattr(self, f) for f in DEFINING_FIELDS if f != "projector"),
                self.projector.kind, self.projector.omega)


DEFINING_FIELDS = ("mixer", "central", "weighting", "double_q", "target_update", "projector")
"""The fields `--algo NAME` sets (the whole projector section included), with the preset
optimiser (`ALGORITHM_OPTIM`) and official settings (`ALGORITHM_SETTINGS`); the other shared
ones (gamma, ...) are kept."""

_SEED_PROJECTOR = dict(mixer="qmix", central=False, double_q=False, target_update="soft")
"""The seed's code: QMIX mixer and agents, own target networks with their per-agent max,
soft target updates."""

ALGORITHMS: dict[str, AlgoConfig] = {
    "ow-qmix": AlgoConfig(mixer="qmix", central=True, weighting="ow"),
    "cw-qmix": AlgoConfig(mixer="qmix", central=True, weighting="cw"),
    "qmix": AlgoConfig(mixer="qmix", central=False, weighting="none"),
    "vdn": AlgoConfig(mixer="vdn", central=False, weighting="none"),
    "iql": AlgoConfig(mixer="none", central=False, weighting="none"),
    # The paper's ablation: the OW weighting alone, targets from QMIX's own target networks
    # (official `qmix_w.yaml`, `hysteretic_qmix: True`) ...
    "ow-qmix-no-central": AlgoConfig(mixer="qmix", central=False, weighting="ow"),
    # ... and its CW twin (official `q_learner_w.py`, `hysteretic_qmix: False`): the greedy
    # joint action's value is QMIX's own target Q_tot instead of Q-hat*'s.
    "cw-qmix-no-central": AlgoConfig(mixer="qmix", central=False, weighting="cw"),
    # From the seed document, not the paper: its code (constant omega = 1, plain MSE) ...
    "projector-qmix": AlgoConfig(**_SEED_PROJECTOR, weighting="none",
                                 projector=ProjectorConfig(kind="state", omega="constant")),
    # ... its text (advantage omega, the loss on greedy transitions only) ...
    "projector-qmix-text": AlgoConfig(**_SEED_PROJECTOR, weighting="greedy-only",
                                      projector=ProjectorConfig(kind="state", omega="advantage")),
    # ... and its state-action extension (9.1) on the code's settings.
    "projector-qmix-sa": AlgoConfig(**_SEED_PROJECTOR, weighting="none",
                                    projector=ProjectorConfig(kind="state-action", omega="constant")),
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
    agent: Literal["rnn", "mlp"] = "rnn"
    """The agent network (and the central one): rnn, Linear -> ReLU -> GRU -> Linear (official
    `rnn_agent`); mlp, the seed's feed-forward `MLP(obs, hidden, actions)`, Linear -> ReLU ->
    Linear with no memory. Default: official."""
    shared_agent: bool = True
    """One agent network for all agents (official parameter sharing) or one of its own per
    agent (the seed's code, a list of `agent_networks`). Default: official."""


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
    packed_rows: tuple[int, ...] = ()
    """Compute only, not what is learned: row counts (increasing) to pack a sampled batch into
    before the update (`buffer.pack`: its episodes end to end in rows as wide as the time limit,
    each agent RNN reset where an episode starts). Each update uses the first count that holds
    the batch, else the padded batch: the same loss (up to float rounding) on fewer rows where
    episodes are much shorter than the time limit. Counts not below `batch_size` are not used.
    Each count used compiles one more copy of the update. Default: ours (off)."""
    collector: Literal["episodes", "stream"] = "episodes"
    """How experience is collected. "episodes": each iteration every env plays one whole
    episode, stored padded to the time limit (the paper's and official protocol). "stream":
    each iteration every env takes `stream_window` steps of an auto-reset stream that carries on
    across iterations, stored as windows that may hold several episodes (each agent RNN reset
    where one begins, and at the window's start), as JaxMARL trains; the replay then holds and
    samples windows (`buffer_size`, `batch_size` count windows) and an episode's end, by the time
    limit too, does not bootstrap (JaxMARL's `done`). Compiled envs only; `packed_rows` does not
    apply. Default: official (episodes)."""
    stream_window: int = 128
    """Env steps per env per iteration with `collector` "stream". Default: JaxMARL
    (`ql_rnn_smax` / `ql_rnn_mpe` `NUM_STEPS`: 128)."""
    env_workers: int = 0
    """Compute only, not what is learned: host-stepped envs (PettingZoo) only. 0 steps every env in
    this process; N > 0 spreads the `num_seeds` x `num_envs` envs over N worker processes that
    step side by side (`wqmix.env_pool.WorkerEnvs`; the env factory must pickle). Pays where the
    env's own step dominates and cores are free. Ignored by compiled (JAX) envs. Default: ours (0).
    """
    env_check: Literal["strict", "warn", "off"] = "warn"
    """Before training, `check_env` plays a few random episodes: its errors (shapes, dtypes,
    NaN/inf, masks, time limit) always stop the run; its warnings (non-determinism) are printed
    and recorded in meta.json (warn), stop the run too (strict), or the check is skipped (off).
    Default: ours (warn: what cannot corrupt training does not refuse it)."""


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
    weight_decay: float = 0.0
    """L2 weight decay added to the clipped gradient as PyTorch's optimisers do
    (`weight_decay`, coupled, not AdamW's). Default: official (none) and seed (0.0)."""


ALGORITHM_OPTIM: dict[str, OptimConfig] = {
    name: OptimConfig(name="adam", lr=5e-4, weight_decay=0.0, grad_norm_clip=10.0, eps=1e-8)
    for name in ("projector-qmix", "projector-qmix-text", "projector-qmix-sa")
}
"""Optimisers that come with an algorithm (`--algo NAME` sets them; every other algorithm gets
`OptimConfig()`): the seed's Adam, lr 5e-4, weight decay 0, grad norm 10, PyTorch's eps 1e-8."""

ALGORITHM_SETTINGS: dict[str, dict[str, Any]] = {
    "ow-qmix-no-central": {"algo.alpha": 0.5},
    "cw-qmix-no-central": {"algo.alpha": 0.5},
    "iql": {"exploration.epsilon_anneal_steps": 20_000},
}
"""Settings the official configs give an algorithm, which `--algo NAME` sets (later overrides
win): the ablation's alpha 0.5 (official `qmix_w.yaml`, `w: 0.5`) and IQL's epsilon anneal over
20k steps (official `iql_smac.yaml`; in the official code the algorithm's file overrides the
environment's). Every other algorithm gets alpha 0.1 (official `ow_qmix.yaml`, `cw_qmix.yaml`)
and keeps the anneal of its preset."""


@dataclass(frozen=True)
class LogConfig:
    """What the host does between compiled chunks."""

    num_chunks: int = 50
    """Training is split into this many compiled chunks (and one more at each test stop); the
    host logs a metrics row and draws the progress bar between them. Default: ours."""
    test_interval: int = 2000
    """Greedy test episodes (`test_return` in the metrics) every this many env steps per seed, as
    the official runner's `test_interval`, and at the last step; the chunks end there too.
    0: test after every chunk. Default: official (`default.yaml`, 2000); `predator-prey-paper`
    and SMAX take the official 10,000 (`pred_prey_punish.yaml`, `sc2.yaml`)."""
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
    """Greedy (epsilon = 0) test episodes per seed at every test stop (`test_interval`) and at
    the end (summary.json). Default: official (`test_nepisode: 20`); SMAX takes the official 32
    (`sc2.yaml`)."""


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


OFFICIAL_TESTS: dict[str, tuple[int, int]] = {"smax": (10_000, 32)}
"""(test_interval, test_episodes) of the official env configs (`sc2.yaml`) for envs that have one;
the others keep the official `default.yaml`'s (2000, 20)."""


def official_defaults(env_name: str) -> Config:
    """Environment `env_name` at its defaults with the official learning settings, epsilon
    annealed 1.0 -> 0.05 over 50k steps included (official `ow_qmix.yaml`), and the official
    test schedule of its env config (`OFFICIAL_TESTS`)."""
    config = dataclasses.replace(Config(), env=env_config_for(env_name), exploration=ExplorationConfig())
    if env_name in OFFICIAL_TESTS:
        interval, episodes = OFFICIAL_TESTS[env_name]
        config = dataclasses.replace(config, log=dataclasses.replace(config.log, test_interval=interval,
                                                                     test_episodes=episodes))
    return config


def predator_prey_paper() -> Config:
    """Predator-prey with the paper's hardest miscapture punishment (p = -2) and the paper's
    protocol: one env, one update of 32 episodes after each episode, epsilon annealed over 50k
    steps (paper Fig. 2), alpha 0.1, 1M env steps and 16 greedy test episodes every 10k env
    steps (official `pred_prey_punish.yaml`). Batches are packed into 12, 16 or 24 rows when they
    fit (`train.packed_rows`, compute only; ours: late in training 32 sampled episodes need 10
    rows of 201 on average, and the update ran 2.15x faster on a 1M-step run's replay,
    `benchmarks/packed_update.py`)."""
    config = official_defaults("predator-prey")
    return dataclasses.replace(config, train=dataclasses.replace(config.train, total_env_steps=1_000_000,
                                                                 packed_rows=PREDATOR_PREY_PACKED_ROWS),
                               log=dataclasses.replace(config.log, test_episodes=16, test_interval=10_000))


PREDATOR_PREY_PACKED_ROWS = (12, 16, 24)
"""`train.packed_rows` of the predator-prey presets (see `predator_prey_paper`)."""


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
    _validate_projector(algo)
    if algo.weighting == "cw":  # without Q-hat*, the value of the greedy action is the target mixer's
        _require(algo.mixer != "none", "algo.weighting", algo.weighting,
                 "CW weighting needs a mixer (Q_tot at the greedy joint action): set algo.mixer to 'qmix' or "
                 "'vdn', or use weighting 'ow' or 'none'")
    if algo.central:
        _require(algo.mixer != "none", "algo.central", algo.central,
                 "the central estimator needs a mixer: set algo.mixer to 'qmix' or 'vdn', or algo.central false")
        _require(algo.central_loss_coef > 0, "algo.central_loss_coef", algo.central_loss_coef,
                 "must be > 0 when algo.central is true (Q-hat* would never learn)")
        _require(algo.double_q, "algo.double_q", algo.double_q,
                 "must be true when algo.central is true (the paper values online QMIX's greedy action with Q-hat*)")

    _require(0.0 < algo.tau <= 1.0, "algo.tau", algo.tau, "must be in (0, 1]")

    _positive(config.network, "network", "agent_hidden", "mixer_embed", "hypernet_embed",
              "central_agent_hidden", "central_mixer_hidden")
    _positive(config.train, "train", "total_env_steps", "num_envs", "updates_per_iteration",
              "batch_size", "buffer_size")
    _require(config.train.buffer_size >= config.train.batch_size, "train.buffer_size",
             config.train.buffer_size, f"must be >= train.batch_size ({config.train.batch_size})")
    _positive(config.train, "train", "stream_window")
    _require(config.train.env_workers >= 0, "train.env_workers", config.train.env_workers,
             "must be >= 0 (0: step host envs in this process)")
    rows = config.train.packed_rows
    _require(all(r > 0 for r in rows) and list(rows) == sorted(set(rows)), "train.packed_rows", list(rows),
             "must be increasing row counts > 0, e.g. [12, 16, 24], or [] for off")
    _unit_interval(config.exploration, "exploration", "epsilon_start", "epsilon_finish")
    _require(config.exploration.epsilon_anneal_steps >= 0, "exploration.epsilon_anneal_steps",
             config.exploration.epsilon_anneal_steps, "must be >= 0")
    _positive(config.optim, "optim", "lr", "eps", "grad_norm_clip")
    _require(config.optim.weight_decay >= 0, "optim.weight_decay", config.optim.weight_decay, "must be >= 0")
    _require(0.0 <= config.optim.rmsprop_decay < 1.0, "optim.rmsprop_decay",
             config.optim.rmsprop_decay, "must be in [0, 1)")
    _positive(config.log, "log", "num_chunks", "test_episodes", "keep_checkpoints")
    _require(config.log.test_interval >= 0, "log.test_interval", config.log.test_interval,
             "must be >= 0 (0: test after every chunk)")
    _require(config.log.checkpoint_interval >= 0, "log.checkpoint_interval", config.log.checkpoint_interval,
             "must be >= 0")
    _require(config.seed >= 0, "seed", config.seed, "must be >= 0")
    _positive(config, "", "num_seeds")
    config.env.validate("env")
    return config


def _validate_projector(algo: AlgoConfig) -> None:
    p, path = algo.projector, "algo.projector"
    if p.kind == "none":  # a projector option set on an algorithm without a projector
        for name, default in _field_defaults(ProjectorConfig).items():
            if name != "kind" and getattr(p, name) != default:
                raise ConfigError(f"{path}.{name}", getattr(p, name),
                                  f"is a projector option, but {path}.kind is 'none' (set it to 'state' or "
                                  "'state-action', or use --algo projector-qmix)")
        return
    _require(algo.mixer == "qmix", "algo.mixer", algo.mixer,
             f"must be 'qmix' with a projector ({path}.kind {p.kind!r}): Q_mono is the QMIX mixer")
    _require(not algo.central, "algo.central", algo.central,
             f"must be false with a projector ({path}.kind {p.kind!r}): the seed's targets come from its own networks")
    _require(algo.td_lambda == 0.0, "algo.td_lambda", algo.td_lambda,
             "must be 0 with a projector (the seed's targets are one-step)")
    _positive(p, path, "heads", "value_samples", "advantage_rate")
    _require(p.advantage_rate <= 1.0, f"{path}.advantage_rate", p.advantage_rate, "must be in (0, 1]")
    _require(p.omega_value >= 0, f"{path}.omega_value", p.omega_value, "must be >= 0")
    _require(p.l2 >= 0, f"{path}.l2", p.l2, "must be >= 0")
    for name in ("omega_anneal_steps", "last_layer_init", "clip", "lr"):
        value = getattr(p, name)
        _require(value is None or value > 0, f"{path}.{name}", value, "must be > 0, or null for off")


def _field_defaults(cls: type) -> dict[str, Any]:
    instance = cls()
    return {f.name: getattr(instance, f.name) for f in dataclasses.fields(cls)}


# --------------------------------------------------------------------------------------------
# Building configs from JSON dictionaries and from `--section.field value` overrides.


COMPUTE_ONLY_FIELDS = ("train.packed_rows", "train.env_workers")
"""Config fields that change how the computation is laid out, not what is learned (the same loss
up to float rounding): two runs that differ only in these are the same experiment, and a stored
config from before such a field existed matches any value of it (`config_difference`)."""


def config_difference(stored: Any, current: Any, path: str = "") -> str | None:
    """The dotted path where a stored run's config (JSON, as in config.json) first differs from
    `current` in what is learned; None when they are the same experiment. `COMPUTE_ONLY_FIELDS`
    are not compared."""
    if path in COMPUTE_ONLY_FIELDS:
        return None
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(set(stored) | set(current)):
            where = _join(path, key)
            if where in COMPUTE_ONLY_FIELDS:
                continue
            if key not in stored or key not in current:
                return where
            found = config_difference(stored[key], current[key], where)
            if found:
                return found
        return None
    return None if stored == current else (path or "(the whole value)")


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
    """`config` with the algorithm's defining fields (`DEFINING_FIELDS`) set to the registered
    algorithm `name`, its optimiser (`ALGORITHM_OPTIM`, else the official one) and its alpha and
    other official settings (`ALGORITHM_SETTINGS`, else alpha 0.1); the other shared fields
    (gamma, ...) are kept."""
    if name not in ALGORITHMS:
        raise ConfigError("algo", name, "must be one of " + ", ".join(ALGORITHMS))
    preset = ALGORITHMS[name]
    algo = dataclasses.replace(config.algo, **{f: getattr(preset, f) for f in DEFINING_FIELDS},
                               alpha=AlgoConfig.alpha)
    config = dataclasses.replace(config, algo=algo, optim=ALGORITHM_OPTIM.get(name, OptimConfig()))
    for dotted, value in ALGORITHM_SETTINGS.get(name, {}).items():
        section, key = dotted.split(".")
        config = dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **{key: value})})
    return config


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
