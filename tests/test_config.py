"""Config validation: every bad input is one line naming the field, the value and what is valid."""

import dataclasses
import json
import subprocess
import sys

import pytest

from wqmix import config as cfg
from wqmix.cli import parse_train_args
from wqmix.errors import ConfigError


def error_of(argv):
    with pytest.raises(ConfigError) as info:
        parse_train_args(argv)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "argv, field, fragment",
    [
        (["--algo.alhpa", "0.5"], "algo.alhpa", "unknown key; valid keys: algo.mixer"),
        (["--nonsense", "1"], "nonsense", "unknown key"),
        (["--train.batch-size", "many"], "train.batch_size", "must be an integer"),
        (["--train.batch-size", "3.5"], "train.batch_size", "must be an integer"),
        (["--algo.central", "maybe"], "algo.central", "must be true or false"),
        (["--algo.alpha", "0"], "algo.alpha", "must be in (0, 1]"),
        (["--algo.alpha", "1.5"], "algo.alpha", "must be in (0, 1]"),
        (["--algo.gamma", "-0.1"], "algo.gamma", "must be in [0, 1]"),
        (["--algo.gamma", "1.01"], "algo.gamma", "must be in [0, 1]"),
        (["--algo.td-lambda", "2"], "algo.td_lambda", "must be in [0, 1]"),
        (["--network.agent-hidden", "0"], "network.agent_hidden", "must be > 0"),
        (["--train.total-env-steps", "-5"], "train.total_env_steps", "must be > 0"),
        (["--train.buffer-size", "16"], "train.buffer_size", "must be >= train.batch_size (32)"),
        (["--optim.lr", "0"], "optim.lr", "must be > 0"),
        (["--optim.name", "sgd"], "optim.name", "must be one of 'rmsprop', 'adam', 'radam'"),
        (["--algo.mixer", "qmix2"], "algo.mixer", "must be one of 'qmix', 'vdn', 'dmaq', 'qtran', 'qatten', 'none'"),
        (["--algo", "iql", "--algo.weighting", "cw"], "algo.weighting", "CW weighting needs a mixer"),
        (["--algo", "iql", "--algo.central", "true"], "algo.central", "needs a mixer"),
        (["--algo", "ow-qmix", "--algo.central-loss-coef", "0"], "algo.central_loss_coef", "must be > 0"),
        (["--algo", "wqmix"], "algo", "must be one of ow-qmix, cw-qmix, qmix, vdn, iql, ow-qmix-no-central"),
        (["--env", "starcraft"], "env", "must be one of matrix-game"),
        (["--preset", "nope"], "preset", "must be one of matrix-game-paper"),
        (["--env.payoff", "[[1, 2, 3], [4, 5, 6]]"], "env.payoff", "must be square: row 0 has 3 entries, there are 2 rows"),
        (["--env.payoff", "[[1]]"], "env.payoff", "at least 2x2"),
        (["--env.payoff", "[[1, 2], [3, \"x\"]]"], "env.payoff[1][1]", "must be a number"),
        (["--env.payoff", "not json"], "env.payoff", "must be a JSON list"),
        (["--exploration.epsilon-start", "1.5"], "exploration.epsilon_start", "must be in [0, 1]"),
        (["--num-seeds", "0"], "num_seeds", "must be > 0"),
        (["--algo", "--seed", "1"], "algo", "needs a value"),
        (["--seed"], "seed", "needs a value"),
        (["--train", "3"], "train", "is a section"),
        (["--algo.alpha.x", "3"], "algo.alpha", "is a value, not a section"),
    ],
)
def test_bad_input_gives_one_line_naming_the_field(argv, field, fragment):
    message = error_of(argv)
    assert message.startswith(field + " = ") or message.startswith(field + " "), message
    assert fragment in message, message


def test_overrides_are_typed_and_dashes_accepted():
    config, out, action = parse_train_args(
        ["--algo", "cw-qmix", "--algo.alpha", "0.5", "--train.total-env-steps", "2e3", "--seed", "7",
         "--env.payoff", "[[1, 0], [0, 1]]", "--out", "somewhere", "--quiet"])
    assert config.algo.name == "cw-qmix" and config.algo.alpha == 0.5
    assert config.train.total_env_steps == 2000 and isinstance(config.train.total_env_steps, int)
    assert config.seed == 7
    assert config.env.payoff == ((1.0, 0.0), (0.0, 1.0))
    assert config.log.quiet and str(out) == "somewhere" and action is None


def test_algorithm_names_map_to_their_pieces():
    expected = {
        "ow-qmix": ("qmix", True, "ow"), "cw-qmix": ("qmix", True, "cw"), "qmix": ("qmix", False, "none"),
        "vdn": ("vdn", False, "none"), "iql": ("none", False, "none"),
        "ow-qmix-no-central": ("qmix", False, "ow"), "cw-qmix-no-central": ("qmix", False, "cw"),
    }
    for name, pieces in expected.items():
        config = cfg.with_algo(cfg.preset("predator-prey-paper"), name)
        algo = config.algo
        assert (algo.mixer, algo.central, algo.weighting) == pieces
        assert algo.name == name
        # The official alpha: qmix_w.yaml's w 0.5 for the ablations, else 0.1; IQL's anneal is
        # iql_smac.yaml's 20k, every other algorithm keeps the preset's 50k.
        assert algo.alpha == (0.5 if name.endswith("-no-central") else 0.1), name
        assert config.exploration.epsilon_anneal_steps == (20_000 if name == "iql" else 50_000), name
    # Switching algorithms does not carry the previous one's official settings along.
    assert cfg.with_algo(cfg.with_algo(cfg.Config(), "ow-qmix-no-central"), "ow-qmix").algo.alpha == 0.1
    # A later override still wins.
    assert parse_train_args(["--algo", "ow-qmix-no-central", "--algo.alpha", "0.2"])[0].algo.alpha == 0.2
    custom = dataclasses.replace(cfg.ALGORITHMS["vdn"], weighting="ow")
    assert custom.name == "custom"


def test_default_config_is_the_paper_matrix_game():
    config = cfg.validate(cfg.Config())
    assert config.env.name == "matrix-game"
    assert config.env.payoff == ((8, -12, -12), (-12, 0, 0), (-12, 0, 0))
    assert config.algo.name == "ow-qmix" and config.algo.alpha == 0.1
    assert config.exploration.epsilon_start == config.exploration.epsilon_finish == 1.0
    assert config.optim.name == "rmsprop" and config.optim.lr == 5e-4 and config.optim.grad_norm_clip == 10.0
    assert config.algo.target_update_interval == 200 and config.train.batch_size == 32
    assert cfg.preset("matrix-game-paper") == config


def test_dict_round_trip_and_json_errors():
    config, _, _ = parse_train_args(["--algo", "vdn", "--algo.gamma", "0.5", "--env.payoff", "[[1,2],[3,4]]"])
    data = json.loads(json.dumps(cfg.to_dict(config)))
    assert data["algo"]["name"] == "vdn" and data["env"]["name"] == "matrix-game"
    assert cfg.from_dict(data) == config
    with pytest.raises(ConfigError, match=r"^train.batchsize = 3 is invalid: unknown key"):
        cfg.from_dict({"train": {"batchsize": 3}})
    with pytest.raises(ConfigError, match=r"^train.batch_size = 3.5 is invalid: must be an integer"):
        cfg.from_dict({"train": {"batch_size": 3.5}})
    with pytest.raises(ConfigError, match=r"^algo.central = 1 is invalid: must be true or false"):
        cfg.from_dict({"algo": {"central": 1}})


def test_python_api_configs_are_validated_too():
    bad = dataclasses.replace(cfg.Config(), algo=dataclasses.replace(cfg.Config().algo, alpha="0.1"))
    with pytest.raises(ConfigError, match=r"^algo.alpha = '0.1' is invalid: must be a number"):
        cfg.validate(bad)
    normalised = cfg.validate(dataclasses.replace(cfg.Config(), algo=dataclasses.replace(cfg.Config().algo, gamma=1)))
    assert isinstance(normalised.algo.gamma, float)


def test_importing_the_config_layer_imports_no_jax():
    code = ("import wqmix.config, sys; "
            "print(sorted(m for m in ('jax', 'flax', 'jaxmarl', 'pettingzoo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_short_runs_play_no_more_test_steps_than_training_steps():
    from wqmix.driver import test_episodes_per_test

    # The default PettingZoo run: 750 steps, tests at 750 and the summary's, 25-step episodes.
    assert test_episodes_per_test(750, 2, 25, 20) == 15
    assert 2 * 25 * test_episodes_per_test(750, 2, 25, 20) <= 750
    assert test_episodes_per_test(1_000_000, 101, 200, 16) == 16  # the paper's predator-prey: as asked
    assert test_episodes_per_test(10, 2, 25, 20) == 1  # always at least one


def test_chunk_stops_are_the_even_chunks_and_the_test_stops():
    from wqmix.driver import chunk_stops, test_stops

    assert test_stops(1_000_000, 10_000) == [10_000 * k for k in range(1, 101)]
    assert chunk_stops(1_000_000, 50, 10_000) == test_stops(1_000_000, 10_000)  # every 20k chunk is a test stop
    assert test_stops(25, 10) == [10, 20, 25]  # the last stop is the total, not a multiple
    assert chunk_stops(25, 2, 10) == [10, 12, 20, 25]
    assert chunk_stops(100, 4) == [25, 50, 75, 100] and test_stops(100, 0) == []
    assert chunk_stops(3, 5) == [1, 2, 3]  # fewer chunks than asked when there are fewer steps
    assert (cfg.Config().log.test_interval, cfg.Config().log.test_episodes) == (2000, 20)  # official default.yaml
    smax = cfg.official_defaults("smax").log
    assert (smax.test_interval, smax.test_episodes) == (10_000, 32)  # official sc2.yaml
    paper = cfg.preset("predator-prey-paper").log
    assert (paper.test_interval, paper.test_episodes) == (10_000, 16)  # official pred_prey_punish.yaml
    with pytest.raises(ConfigError, match="log.test_interval"):
        cfg.validate(dataclasses.replace(cfg.Config(), log=cfg.LogConfig(test_interval=-1)))


def test_config_difference_ignores_compute_only_fields_only():
    stored = json.loads(json.dumps(cfg.to_dict(cfg.preset("predator-prey-paper"))))
    current = json.loads(json.dumps(stored))
    current["train"]["packed_rows"] = [12, 16]
    assert cfg.config_difference(stored, current) is None
    del stored["train"]["packed_rows"]  # a run stored before the field existed
    assert cfg.config_difference(stored, current) is None
    current["algo"]["alpha"] = 0.5
    assert cfg.config_difference(stored, current) == "algo.alpha"
    current["algo"]["alpha"] = stored["algo"]["alpha"]
    del stored["train"]["batch_size"]
    assert cfg.config_difference(stored, current) == "train.batch_size"


@pytest.mark.parametrize("rows", [[16, 12], [0], [12, 12]])
def test_packed_rows_must_be_increasing_counts(rows):
    config = cfg.preset("predator-prey-paper")
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, packed_rows=tuple(rows)))
    with pytest.raises(ConfigError, match=r"train.packed_rows = .* must be increasing row counts > 0"):
        cfg.validate(config)


def test_lbf_epymarl_preset_is_epymarls_qmix_and_keeps_its_optimiser_under_algo():
    config = parse_train_args(["--preset", "lbf-epymarl", "--algo", "ow-qmix"])[0]
    assert (config.env.name, config.env.id) == ("jumanji", "LevelBasedForaging-v0")
    assert config.algo.name == "ow-qmix" and config.algo.standardise_rewards
    assert config.network.agent == "ff" and not config.network.obs_last_action and config.network.obs_agent_id
    assert (config.optim.name, config.optim.lr, config.optim.eps) == ("adam", 5e-4, 1e-8)
    assert config.train.total_env_steps == 2_050_000 and config.train.num_envs == 1
    assert (config.log.test_interval, config.log.test_episodes) == (50_000, 100)
    assert config.exploration.epsilon_anneal_steps == 50_000 and config.algo.target_update_interval == 200
    # An algorithm's own optimiser comes and goes with it; without one, the official optimiser.
    assert parse_train_args(["--preset", "lbf-epymarl", "--algo", "projector-qmix"])[0].optim == \
        cfg.ALGORITHM_OPTIM["projector-qmix"]
    projector = cfg.with_algo(cfg.Config(), "projector-qmix")
    assert cfg.with_algo(projector, "qmix").optim == cfg.OptimConfig()
    assert not cfg.Config().algo.standardise_rewards and cfg.Config().network.agent == "rnn"
