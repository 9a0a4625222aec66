"""Environments: the protocol, the registry and the built-in environments."""

from wqmix.envs.base import Environment, EnvSpec, HostEnvironment, TimeStep
from wqmix.envs.check import check_env
from wqmix.envs.matrix_game import PAPER_PAYOFF, MatrixGame, MatrixGameConfig
from wqmix.envs.registry import ENV_CONFIGS, env_config_for

__all__ = ["Environment", "EnvSpec", "HostEnvironment", "TimeStep", "check_env", "MatrixGame", "MatrixGameConfig",
           "PAPER_PAYOFF", "ENV_CONFIGS", "env_config_for"]
