"""The other config sections (network, train, exploration, optim, log) and the root `Config`.

Every default names its source in the field's docstring (see `wqmix.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wqmix.config.algorithms import ALGORITHMS, AlgoConfig
from wqmix.envs.registry import ENV_CONFIGS, EnvConfig


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
    agent: Literal["rnn", "mlp", "ff"] = "rnn"
    """The agent network (and the central one): rnn, Linear -> ReLU -> GRU -> Linear (official
    `rnn_agent`); mlp, the projector write-up's feed-forward `MLP(obs, hidden, actions)`, Linear -> ReLU ->
    Linear with no memory; ff, EPyMARL's `rnn_agent` with `use_rnn: False`, Linear -> ReLU -> Linear ->
    ReLU -> Linear with no memory. Default: official."""
    shared_agent: bool = True
    """One agent network for all agents (official parameter sharing) or one of its own per
    agent (the write-up's code, a list of `agent_networks`). Default: official."""


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

    name: Literal["rmsprop", "adam", "radam"] = "rmsprop"
    """Default: official (RMSprop); pymarl2 uses Adam with lr 1e-3; JaxMARL's Q-learning
    baselines use RAdam (`optax.radam`, with its eps 1e-8) at lr 5e-5."""
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
    (`weight_decay`, coupled, not AdamW's). Default: official (none) and write-up (0.0)."""



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
