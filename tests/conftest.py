"""Shared fixtures: tiny configs, so that JAX compiles stay short."""

import dataclasses

import pytest

from wqmix import config as cfg


def tiny_config(algo: str = "ow-qmix", **train) -> cfg.Config:
    """The matrix game with small networks and a short schedule."""
    base = cfg.with_algo(cfg.Config(), algo)
    return cfg.validate(dataclasses.replace(
        base,
        network=cfg.NetworkConfig(agent_hidden=8, mixer_embed=4, hypernet_embed=8, central_agent_hidden=8,
                                  central_mixer_hidden=16),
        train=dataclasses.replace(base.train, **{"total_env_steps": 96, "batch_size": 8, "buffer_size": 32,
                                                 **train}),
        algo=dataclasses.replace(base.algo, target_update_interval=16),
        log=cfg.LogConfig(num_chunks=2, quiet=True),
    ))


@pytest.fixture(scope="session")
def tiny():
    return tiny_config
