"""Shared fixtures: tiny configs, so that JAX compiles stay short; one XLA compilation cache."""

import atexit
import dataclasses
import os
import shutil
import tempfile

import pytest

from wqmix import config as cfg

# One persistent XLA compilation cache for the session and the processes it starts (CLI runs,
# Ray workers): a test that builds a trainer another test built already loads the compiled
# functions instead of compiling them again. A fresh directory each session, so every session
# still compiles everything once (set JAX_COMPILATION_CACHE_DIR to keep one across sessions).
# Set before any test module imports JAX, which reads it then.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="wqmix-tests-xla-cache-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)

# The tests compile with XLA's backend (LLVM) optimisation off and its CPU fusion emitters off
# (the older emitters compile a small program in about half the time): the same maths, compiled
# in much less time, and the tests' programs are small enough that running
# them unoptimised costs little. Training and `wqmix bench` outside the tests keep XLA's default.
# Set XLA_FLAGS to test otherwise.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false")


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


# The files that take longest, longest first (measured with `pytest --durations=0`). `pytest` hands
# whole files to its two worker processes in collection order (`--no-loadscope-reorder` in
# pyproject.toml: xdist would otherwise order them by their number of tests), so starting with
# the long ones leaves the short ones to even out the two workers at the end. This orders the
# work; it changes nothing that runs.
LONGEST_FIRST = ("test_sweep.py", "test_resume.py", "test_train.py", "test_cluster.py", "test_learner_official.py",
                 "test_projector.py", "test_cli.py", "test_check_env.py", "test_pettingzoo.py", "test_jumanji.py",
                 "test_jaxmarl_any.py", "test_networks.py", "test_predator_prey.py", "test_matrix_game_learning.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        if name in LONGEST_FIRST:
            return LONGEST_FIRST.index(name)
        return len(LONGEST_FIRST) + (0 if item.get_closest_marker("integration") else 1)

    items.sort(key=rank)  # stable: a file's tests keep their order
