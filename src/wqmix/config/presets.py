"""Whole configurations with a name, and what a name sets: `--preset NAME` (`PRESETS`), `--env NAME`
(`env_default`, `with_env`) and `--algo NAME` (`with_algo`: the registered algorithm's defining
fields, its optimiser `ALGORITHM_OPTIM` and official settings `ALGORITHM_SETTINGS`).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from wqmix.config.algorithms import ALGORITHMS, DEFINING_FIELDS, AlgoConfig
from wqmix.config.sections import Config, ExplorationConfig, OptimConfig
from wqmix.envs.registry import env_config_for
from wqmix.errors import ConfigError

ALGORITHM_OPTIM: dict[str, OptimConfig] = {
    name: OptimConfig(name="adam", lr=5e-4, weight_decay=0.0, grad_norm_clip=10.0, eps=1e-8)
    for name in ("projector-qmix", "projector-qmix-text", "projector-qmix-sa")
}
"""Optimisers that come with an algorithm (`--algo NAME` sets them; every other algorithm gets
`OptimConfig()`): the projector write-up's Adam, lr 5e-4, weight decay 0, grad norm 10, PyTorch's eps 1e-8."""

ALGORITHM_SETTINGS: dict[str, dict[str, Any]] = {
    "ow-qmix-no-central": {"algo.alpha": 0.5},
    "cw-qmix-no-central": {"algo.alpha": 0.5},
    "iql": {"exploration.epsilon_anneal_steps": 20_000},
    "qatten": {"train.packed_rows": ()},
}
"""Settings the official configs give an algorithm, which `--algo NAME` sets (later overrides
win): the ablation's alpha 0.5 (official `qmix_w.yaml`, `w: 0.5`) and IQL's epsilon anneal over
20k steps (official `iql_smac.yaml`; in the official code the algorithm's file overrides the
environment's). Qatten's batches are not packed (its regulariser averages over padded rows, as
the official code's does). Every other algorithm gets alpha 0.1 (official `ow_qmix.yaml`, `cw_qmix.yaml`)
and keeps the anneal of its preset."""


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


EPYMARL_OPTIM = OptimConfig(name="adam", lr=5e-4, weight_decay=0.0, grad_norm_clip=10.0, eps=1e-8)
"""EPyMARL's optimiser for every value-based learner: Adam, lr 5e-4 (`q_learner.py`,
`Adam(params, lr=args.lr)`: PyTorch's eps 1e-8, no weight decay), grad norm 10 (`default.yaml`)."""


def lbf_epymarl() -> Config:
    """Level-based foraging, Jumanji's `LevelBasedForaging-v0` at its defaults (8x8 grid, 2 agents,
    2 foods, cooperation forced, full view, 100-step episodes), under EPyMARL's QMIX settings
    (uoe-agents/epymarl: `config/default.yaml`, `algs/qmix.yaml`, `envs/gymma.yaml`): one env and one
    update of 32 episodes after each episode (`runner: episode`), replay 5,000 episodes, epsilon
    1.0 -> 0.05 over 50k steps, targets copied every 200 episodes, standardised rewards
    (`standardise_rewards: True`), agent inputs with the agent id but not the last action
    (`obs_last_action: False`), the feed-forward agent of 64 units (`use_rnn: False`), Adam
    (`EPYMARL_OPTIM`), 2.05M env steps (`t_max`) and 100 greedy test episodes every 50k steps.
    The Jumanji env is the JAX version of the `lbforaging` task EPyMARL ran as `Foraging-8x8-2p-2f-coop`.
    `--algo NAME` keeps this optimiser unless the algorithm has its own (`with_algo`)."""
    base = official_defaults("jumanji")
    return dataclasses.replace(
        base,
        algo=dataclasses.replace(base.algo, standardise_rewards=True),
        network=dataclasses.replace(base.network, obs_last_action=False, agent="ff"),
        optim=EPYMARL_OPTIM,
        train=dataclasses.replace(base.train, total_env_steps=2_050_000),
        log=dataclasses.replace(base.log, test_interval=50_000, test_episodes=100))


PRESETS: dict[str, typing.Callable[[], Config]] = {
    "matrix-game-paper": matrix_game_paper,
    "predator-prey-paper": predator_prey_paper,
    "predator-prey-fast": predator_prey_fast,
    "lbf-epymarl": lbf_epymarl,
}
"""Named presets for `--preset`. The default `Config()` is `matrix-game-paper`."""

ENV_PRESETS: dict[str, str] = {"matrix-game": "matrix-game-paper", "predator-prey": "predator-prey-paper"}
"""The preset `--env NAME` starts from; other envs start from `official_defaults(NAME)`."""


def env_default(env_name: str) -> Config:
    """What `--env NAME` starts from: the env's preset, else the official defaults."""
    if env_name in ENV_PRESETS:
        return preset(ENV_PRESETS[env_name])
    return official_defaults(env_name)


def with_env(config: Config, name: str) -> Config:
    """`config` with the environment replaced by the registered env `name` at its defaults."""
    return dataclasses.replace(config, env=env_config_for(name))


def with_algo(config: Config, name: str) -> Config:
    """`config` with the algorithm's defining fields (`DEFINING_FIELDS`) set to the registered
    algorithm `name`, its optimiser and its alpha and other official settings
    (`ALGORITHM_SETTINGS`, else alpha 0.1); the other shared fields (gamma, ...) are kept. The
    optimiser: the algorithm's own (`ALGORITHM_OPTIM`); else the base config's, a preset's protocol
    such as `lbf-epymarl`'s Adam, unless the config's algorithm has its own (then the official one)."""
    if name not in ALGORITHMS:
        raise ConfigError("algo", name, "must be one of " + ", ".join(ALGORITHMS))
    preset = ALGORITHMS[name]
    kept = OptimConfig() if config.algo.name in ALGORITHM_OPTIM else config.optim
    algo = dataclasses.replace(config.algo, **{f: getattr(preset, f) for f in DEFINING_FIELDS},
                               alpha=AlgoConfig.alpha)
    config = dataclasses.replace(config, algo=algo, optim=ALGORITHM_OPTIM.get(name, kept))
    for dotted, value in ALGORITHM_SETTINGS.get(name, {}).items():
        section, key = dotted.split(".")
        config = dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **{key: value})})
    return config


def preset(name: str) -> Config:
    """The named preset's config."""
    if name not in PRESETS:
        raise ConfigError("preset", name, "must be one of " + ", ".join(PRESETS))
    return PRESETS[name]()
