"""Environment registry: one table from a name to its typed config class. Imports no JAX (the
configs import their environment only in `make`)."""

from __future__ import annotations

from wqmix.envs.configs import (MatrixGameConfig, MpeSpreadConfig, PettingZooConfig, PredatorPreyConfig,
                                SmaxConfig)
from wqmix.envs.user_configs import GymConfig, JaxFactoryConfig, JaxMarlConfig, JumanjiConfig, SmacApiConfig
from wqmix.errors import ConfigError

EnvConfig = (MatrixGameConfig | PredatorPreyConfig | SmaxConfig | MpeSpreadConfig | PettingZooConfig | JaxMarlConfig
             | JumanjiConfig | JaxFactoryConfig | GymConfig | SmacApiConfig)
"""The union of the registered env config classes (each has `name`, `validate`, `make`)."""

ENV_CONFIGS: dict[str, type[EnvConfig]] = {
    config.name: config for config in (MatrixGameConfig, PredatorPreyConfig, SmaxConfig, MpeSpreadConfig,
                                          PettingZooConfig, JaxMarlConfig, JumanjiConfig, JaxFactoryConfig, GymConfig,
                                          SmacApiConfig)
}


def env_config_for(name: str) -> EnvConfig:
    """The default config of the registered environment `name`."""
    if name not in ENV_CONFIGS:
        raise ConfigError("env", name, "must be one of " + ", ".join(ENV_CONFIGS))
    return ENV_CONFIGS[name]()
