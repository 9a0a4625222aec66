"""The matrix game's outcome: OW-/CW-QMIX recover the optimal joint action under the paper's
settings. Its own file so that pytest-xdist (`--dist loadfile`) can run it beside test_train.py."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from wqmix import config as cfg
from wqmix.evaluate import matrix_game_tables
from wqmix.train import Trainer, seed_keys

pytestmark = pytest.mark.integration  # learning runs


def matrix_game_outcomes(algo: str, episodes: int, num_seeds: int = 5) -> list[dict]:
    """Learned tables of `num_seeds` vmapped seeds under the paper's matrix-game settings
    (uniform exploration, batch 32, alpha 0.1, targets every 200 episodes, official sizes)."""
    config = cfg.with_algo(cfg.Config(), algo)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, total_env_steps=episodes),
                                 num_seeds=num_seeds)
    trainer = Trainer(config)
    states = jax.vmap(trainer.init)(seed_keys(0, num_seeds))
    final, _ = jax.jit(trainer.run_chunk_seeds)(states, jnp.int32(episodes))
    return [matrix_game_tables(trainer, jax.tree_util.tree_map(lambda x: x[seed], final.learner))
            for seed in range(num_seeds)]


def assert_recovers_optimum(outcomes: list[dict]) -> None:
    for seed, tables in enumerate(outcomes):
        assert tables["greedy_joint_action"] == [0, 0], (seed, tables)
        assert tables["greedy_return"] == 8.0
        assert abs(tables["q_central"][0][0] - 8.0) <= 2.0, (seed, tables["q_central"])


@pytest.mark.parametrize("algo", ["ow-qmix", pytest.param("cw-qmix", marks=pytest.mark.slow)])
def test_wqmix_recovers_the_optimal_joint_action_on_the_matrix_game(algo):
    """1 seed of 1500 episodes (the paper's settings, shortened; 5 seeds of the full preset are
    `test_wqmix_matrix_game_full_preset`, with `-m slow`)."""
    assert_recovers_optimum(matrix_game_outcomes(algo, 1500, num_seeds=1))


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ow-qmix", "cw-qmix"])
def test_wqmix_matrix_game_full_preset(algo):
    """The full `matrix-game-paper` preset (10k episodes), 5 seeds: about 2 minutes each on 2 cores."""
    assert_recovers_optimum(matrix_game_outcomes(algo, cfg.preset("matrix-game-paper").train.total_env_steps))
