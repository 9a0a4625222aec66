"""Typed, frozen configuration: one dataclass per section under one root `Config`.

Every default names its source in the field's docstring:
- "paper": Rashid et al., Weighted QMIX, NeurIPS 2020 (arXiv 2006.10800);
- "official": the authors' code, oxwhirl/wqmix (`src/config/default.yaml`, `algs/ow_qmix.yaml`);
- "pymarl2": hijkzzz/pymarl2, where it departs from the official code;
- "ours": a choice of this library.

Configs are checked by `validate` before anything is compiled. A bad value raises `ConfigError`
whose message is one line naming the field, the bad value and what would be valid.

The modules, each importing only those above it (and this package's names are theirs,
re-exported; the modules never import from this `__init__`):
- `algorithms`: the algo section (`AlgoConfig`, `ProjectorConfig`) and the algorithm registry
  (`ALGORITHMS`, `DEFINING_FIELDS`);
- `sections`: the other sections (network, train, exploration, optim, log) and the root `Config`;
- `presets`: named configs (`PRESETS`, `preset`, `official_defaults`, `env_default`) and what
  `--env NAME` and `--algo NAME` set (`with_env`, `with_algo`, `ALGORITHM_OPTIM`,
  `ALGORITHM_SETTINGS`);
- `typecheck`: a value against a field's annotation;
- `validation`: `validate`, types first, then ranges, then combinations;
- `parsing`: `from_dict`, `with_fields` (dotted fields, JSON values), `to_dict`, `apply_override`
  (command-line text), `config_difference`;
- `resolve`: `resolve_config`, the one order in which `wqmix train`, `wqmix sweep` and `wqmix
  reproduce` put a run's config together (preset, file, env and algo, seed, fields, overrides,
  validation).
"""

from wqmix.config.algorithms import (
    ALGORITHMS,
    DEFINING_FIELDS,
    AlgoConfig,
    MixerName,
    OmegaMode,
    ProjectorConfig,
    ProjectorKind,
    QattenConfig,
    QplexConfig,
    QtranConfig,
    WeightingName,
)
from wqmix.config.parsing import (
    COMPUTE_ONLY_FIELDS,
    apply_override,
    config_difference,
    from_dict,
    to_dict,
    with_fields,
)
from wqmix.config.presets import (
    ALGORITHM_OPTIM,
    ALGORITHM_SETTINGS,
    ENV_PRESETS,
    OFFICIAL_TESTS,
    PREDATOR_PREY_PACKED_ROWS,
    PRESETS,
    env_default,
    matrix_game_paper,
    official_defaults,
    predator_prey_fast,
    predator_prey_paper,
    preset,
    with_algo,
    with_env,
)
from wqmix.config.resolve import read_config_file, resolve_config
from wqmix.config.sections import Config, ExplorationConfig, LogConfig, NetworkConfig, OptimConfig, TrainConfig
from wqmix.config.typecheck import field_types
from wqmix.config.validation import validate
from wqmix.errors import ConfigError

__all__ = [
    "ALGORITHMS", "ALGORITHM_OPTIM", "ALGORITHM_SETTINGS", "AlgoConfig", "COMPUTE_ONLY_FIELDS", "Config",
    "ConfigError", "DEFINING_FIELDS", "ENV_PRESETS", "ExplorationConfig", "LogConfig", "MixerName",
    "NetworkConfig", "OFFICIAL_TESTS", "OmegaMode", "OptimConfig", "PREDATOR_PREY_PACKED_ROWS", "PRESETS",
    "ProjectorConfig", "ProjectorKind", "QattenConfig", "QplexConfig", "QtranConfig", "TrainConfig", "WeightingName", "apply_override", "config_difference",
    "env_default", "field_types", "from_dict", "matrix_game_paper", "official_defaults", "predator_prey_fast",
    "predator_prey_paper", "preset", "read_config_file", "resolve_config", "to_dict", "validate", "with_algo",
    "with_env", "with_fields",
]
