"""The non-monotonic matrix-games suite: which games count, the random draw, "optimal", and the
vmapped training of games x seeds against single runs."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wqmix import config as cfg
from wqmix.cli import main
from wqmix.envs.configs import MatrixGameConfig
from wqmix.evaluate import joint_tables
from wqmix.experiments import matrix_games as mg
from wqmix.train import Trainer

pytestmark = pytest.mark.integration  # learning runs of the matrix-games suite


def test_hand_crafted_games_are_non_monotonic_and_the_seeds_2x2_is_not():
    assert all(mg.is_non_monotonic(np.asarray(p)) for p in mg.HAND_CRAFTED.values())
    # Paper: row means (-5.3, -4, -4) lead uniform learners to (1, 1), which pays 0 < 8.
    assert mg.uniform_greedy_joint_action(np.asarray(mg.HAND_CRAFTED["paper"])) == (1, 1)
    assert not mg.is_non_monotonic(np.array([[8.0, -12.0], [-12.0, 0.0]]))  # means point to (0, 0)


def test_random_games_are_reproducible_non_monotonic_with_one_clear_optimum():
    games = mg.random_games(6, seed=3)
    np.testing.assert_array_equal(games, mg.random_games(6, seed=3))
    assert not np.array_equal(games, mg.random_games(6, seed=4))
    for g in games:
        ranked = np.sort(g.ravel())
        assert mg.is_non_monotonic(g) and ranked[-1] - ranked[-2] >= 1
        assert g.min() >= -12 and g.max() <= 12 and np.all(g == np.round(g))


def test_optimal_compares_the_greedy_payoff_with_the_best():
    payoffs = np.array([mg.HAND_CRAFTED["penalty"], mg.HAND_CRAFTED["paper"]], np.float32)
    greedy = np.array([[[0, 0], [2, 2], [1, 1]], [[0, 0], [1, 1], [0, 1]]])
    np.testing.assert_array_equal(mg.optimal(payoffs, greedy), [[True, True, False], [True, False, False]])


SUITE_CONFIG = mg.suite_config


def tiny_suite_config(algo):
    config = SUITE_CONFIG(algo, total_env_steps=40)
    return cfg.validate(dataclasses.replace(
        config, network=cfg.NetworkConfig(agent_hidden=8, mixer_embed=4, hypernet_embed=8, central_agent_hidden=8,
                                          central_mixer_hidden=16),
        train=dataclasses.replace(config.train, batch_size=8, buffer_size=32),
        algo=dataclasses.replace(config.algo, target_update_interval=16)))


@pytest.mark.slow
def test_vmapped_games_and_seeds_equal_their_single_runs():
    config = tiny_suite_config("projector-qmix-text")
    payoffs = np.array([mg.HAND_CRAFTED["paper"], mg.HAND_CRAFTED["climbing"]], np.float32)
    keys = jnp.stack([jax.random.key(1), jax.random.key(2)])
    runs = mg.make_suite_train(config)(jnp.asarray(payoffs), keys)
    assert not np.allclose(runs["q_tot"][0, 0], runs["q_tot"][1, 0])  # the games differ
    single = dataclasses.replace(config, env=MatrixGameConfig(payoff=tuple(map(tuple, payoffs[1].tolist()))))
    trainer = Trainer(single)
    run_chunk = jax.jit(trainer.run_chunk)
    for s in range(2):
        state, _ = run_chunk(trainer.init(keys[s]), jnp.int32(40))
        np.testing.assert_allclose(runs["q_tot"][1, s], joint_tables(trainer, state.learner)[1], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_cli_runs_the_suite_and_writes_both_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(mg, "suite_config", lambda algo, total_env_steps=None: tiny_suite_config(algo))
    assert main(["experiment", "matrix-games", "--out", str(tmp_path), "--random", "1", "--seeds", "2",
                 "--algos", "projector-qmix"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["algorithms"]) == ["projector-qmix"]
    assert len(results["games"]) == len(mg.HAND_CRAFTED) + 1
    for r in results["algorithms"].values():
        hits = sum(r["optimal_by_game"].values())
        assert r["optimal_fraction"] == pytest.approx(hits / (2 * len(results["games"])))
        assert r["ci95"][0] <= r["optimal_fraction"] <= r["ci95"][1]
    text = (tmp_path / "results.md").read_text()
    assert "| projector-qmix |" in text and "## climbing" in text and "60%" in text
    # Another part of the grid later: what was stored stays, untouched (--env-steps: the tiny config's).
    assert main(["reproduce", "matrix-games", "--out", str(tmp_path), "--random", "1", "--seeds", "2",
                 "--algos", "vdn", "--env-steps", "40"]) == 0
    again = json.loads((tmp_path / "results.json").read_text())
    assert list(again["algorithms"]) == ["projector-qmix", "vdn"]
    assert again["algorithms"]["projector-qmix"] == results["algorithms"]["projector-qmix"]
    assert again["wall_s"] == pytest.approx(sum(r["wall_s"] for r in again["algorithms"].values()), abs=0.2)
    assert "| vdn |" in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize("args, fragment", [
    (["nonsense"], "argument SUITE: invalid choice: 'nonsense'"),
    (["matrix-games", "--seeds", "0"], "argument --seeds: '0' is invalid"),
    (["matrix-games", "--algos", "qmix,qmax"], "argument --algos: 'qmax' is invalid"),
    (["matrix-games", "--episodes", "many"], "argument --episodes: 'many' is invalid"),
    (["matrix-games", "--colour", "red"], "unrecognized arguments: --colour red"),
])
def test_cli_bad_options_name_the_option(args, fragment, capsys):
    assert main(["experiment", *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
