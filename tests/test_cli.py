"""The command line end to end: outputs of a run, and one-line errors with exit status 2."""

import importlib.metadata
import json
import os
import re
import socket
import subprocess
import sys

import pytest

from wqmix.cli import main

pytestmark = pytest.mark.integration  # the CLI end to end, with training runs

TINY = ["--train.total-env-steps", "48", "--train.batch-size", "8", "--train.buffer-size", "16",
        "--network.agent-hidden", "8", "--network.mixer-embed", "4", "--network.hypernet-embed", "8",
        "--network.central-agent-hidden", "8", "--network.central-mixer-hidden", "16", "--log.num-chunks", "3"]


class NetworkUsed(AssertionError):
    pass


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A whole CLI run, with every network connection made to fail: nothing is downloaded."""
    out = tmp_path_factory.mktemp("run")
    original = socket.socket.connect

    def refuse(self, address):
        raise NetworkUsed(f"a network connection to {address} was attempted")

    socket.socket.connect = refuse
    try:
        status = main(["train", "--algo", "cw-qmix", "--num-seeds", "2", "--seed", "5", "--out", str(out),
                       "--quiet", *TINY, "--log.test-interval", "20"])
    finally:
        socket.socket.connect = original
    assert status == 0
    return out


def test_no_pytorch_anywhere(run_dir):
    requirements = importlib.metadata.requires("wqmix") or []
    assert not [r for r in requirements if r.split()[0].lower().startswith("torch")]
    assert "torch" not in sys.modules  # a whole training run never imported it


def test_run_directory_files(run_dir):
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.json", "meta.json", "metrics.csv",
                                                         "metrics.jsonl", "provenance.jsonl", "summary.json"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["algo"]["name"] == "cw-qmix" and config["seed"] == 5 and config["num_seeds"] == 2
    assert config["train"]["total_env_steps"] == 48
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["packages"]["jax"] and meta["jax_backend"] == "cpu" and meta["command"][:2] == ["wqmix", "train"]
    # One record for the call that trained, one for its final evaluation; each with the code and machine.
    train, final = [json.loads(line) for line in (run_dir / "provenance.jsonl").read_text().splitlines()][:2]
    assert (train["event"], train["from_env_steps"]) == ("train", 0)
    assert (final["event"], final["env_steps"], final["file"]) == ("final-evaluation", 48, "summary.json")
    assert train["git"]["commit"] == meta["git"]["commit"] and "code_dirty" in train["git"]
    assert train["machine"]["cpu_count"] == os.cpu_count() and train["command"] == meta["command"]


def test_metrics_are_logged_per_seed(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == [5, 6] * 5
    # Three chunks (16, 32, 48) and the greedy tests every 20 steps and at the end.
    assert [r["env_steps"] for r in rows] == [16, 16, 20, 20, 32, 32, 40, 40, 48, 48]
    assert [r["env_steps"] for r in rows if "test_return" in r] == [20, 20, 40, 40, 48, 48]
    assert all(isinstance(r["test_return"], float) for r in rows if "test_return" in r)
    last = rows[-1]
    assert last["episodes"] == 48 and last["updates"] == 48 - 8 + 1
    assert 0.1 <= last["mean_weight"] <= 1.0 and last["loss"] > 0 and last["epsilon"] == 1.0
    assert rows[0]["loss"] is not None  # learning started inside the first chunk (episode 8)


def test_summary_has_the_matrix_game_tables(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["algo"] == "cw-qmix" and summary["env"] == "matrix-game" and summary["seeds"] == [5, 6]
    assert summary["total_env_steps"] == 48 and summary["env_steps_per_s"] > 0
    payoff = [[8, -12, -12], [-12, 0, 0], [-12, 0, 0]]
    for entry in summary["per_seed"]:
        i, j = entry["greedy_joint_action"]
        assert entry["greedy_return"] == payoff[i][j]
        assert len(entry["q_tot"]) == 3 and all(len(row) == 3 for row in entry["q_tot"])
        assert len(entry["q_central"]) == 3
        # The greedy joint action is the argmax of the agents' utilities, and (QMIX being
        # monotonic) also of Q_tot.
        q = entry["q_tot"]
        assert q[i][j] == max(max(row) for row in q)


def test_non_wqmix_summary_has_no_central_table(tmp_path):
    assert main(["train", "--algo", "vdn", "--out", str(tmp_path), "--quiet", *TINY]) == 0
    entry = json.loads((tmp_path / "summary.json").read_text())["per_seed"][0]
    assert entry["q_central"] is None
    # VDN's Q_tot is the sum of the two utilities.
    q0, q1 = entry["agent_q"]
    assert abs(entry["q_tot"][1][2] - (q0[1] + q1[2])) < 1e-3


@pytest.mark.parametrize("args, expected", [
    (["--algo.alpha", "2"], "wqmix train: error: algo.alpha = 2.0 is invalid: must be in (0, 1]"),
    (["--env.payoff", "[[1, 2]]"], "wqmix train: error: env.payoff = ((1.0, 2.0),) is invalid: must be square: "
                                   "row 0 has 2 entries, there are 1 rows"),
])
def test_bad_input_exits_2_with_one_line(args, expected):
    result = subprocess.run([sys.executable, "-m", "wqmix.cli", "train", *args], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == expected
    assert result.stdout == ""


def test_unwritable_output_directory_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["train", "--out", str(blocker / "run"), "--quiet", *TINY]) == 2
    assert "cannot write to the output directory" in capsys.readouterr().err


def test_eval_a_saved_run(run_dir, capsys):
    assert main(["eval", str(run_dir), "--episodes", "4"]) == 0
    result = json.loads((run_dir / "eval-48.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert result["checkpoint"] == 48 and result["episodes"] == 4
    assert [e["seed"] for e in result["per_seed"]] == [5, 6]
    for entry, trained in zip(result["per_seed"], summary["per_seed"]):
        # The greedy policy of the matrix game is deterministic: every test episode pays the
        # payoff of the learned greedy joint action.
        assert entry["mean_return"] == trained["greedy_return"] and entry["std_return"] == 0.0
    last = json.loads((run_dir / "provenance.jsonl").read_text().splitlines()[-1])
    assert (last["event"], last["file"], last["command"][:2]) == ("evaluate", "eval-48.json", ["wqmix", "eval"])
    assert main(["eval", str(run_dir), "--checkpoint", "3"]) == 2
    assert "has no checkpoint at env step 3; it has 48" in capsys.readouterr().err


# Parsing only (no training): each of these takes well under a second.

def test_unknown_option_of_table_is_one_line(capsys):
    assert main(["table", "some-run", "--colour", "red"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "wqmix table: error: unrecognized arguments: --colour red\n" and captured.out == ""


def test_train_help_shows_the_values_after_the_options_before_it(capsys):
    assert main(["train", "--algo", "qmix", "--algo.alpha", "0.3", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: wqmix train")
    assert re.search(r'^  --algo +"qmix"$', out, re.M) and re.search(r"^  --algo\.central +false$", out, re.M)
    assert re.search(r"^  --algo\.alpha +0\.3$", out, re.M) and "--train.total_env_steps" in out
    assert main(["--algo", "vdn", "-h"]) == 0  # first token an option: `wqmix train`
    assert re.search(r'^  --algo +"vdn"$', capsys.readouterr().out, re.M)


@pytest.mark.parametrize("argv", [["eval", "some-run", "--episodes", "0"],
                                  ["check-env", "matrix-game", "--episodes", "0"]])
def test_episodes_must_be_positive(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--episodes" in err and "'0' is invalid: must be a positive integer" in err


def test_check_env_wants_the_name_first_or_as_train_takes_it(capsys):
    assert main(["check-env", "--env.grid-size", "5", "predator-prey"]) == 2
    assert capsys.readouterr().err == ("wqmix check-env: error: name an environment first: "
                                       "wqmix check-env NAME (or --env NAME) [--env.FIELD VALUE ...]\n")
    # `--env NAME`, anywhere, as `wqmix train` takes it; the field override applies (4 x 4 grid: 2 agents fit).
    for argv in (["--env", "predator-prey", "--env.grid-size", "4", "--env.num-agents", "2", "--env.num-prey", "1"],
                 ["--env.grid-size", "4", "--env=predator-prey", "--env.num-agents", "2", "--env.num-prey", "1"]):
        assert main(["check-env", *argv]) == 0
        assert capsys.readouterr().out.startswith("predator-prey: OK (agents 2, obs 75, state 48,")
    assert main(["check-env", "--env"]) == 2
    assert "--env needs an environment name" in capsys.readouterr().err


def test_stray_train_argument_is_one_line(capsys):
    assert main(["train", "--quiet", "stray"]) == 2
    assert capsys.readouterr().err == ("wqmix train: error: argument = 'stray' is invalid: options look like "
                                       "--name value; see wqmix train --help\n")


def test_wqmix_help_names_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("train", "eval", "check-env", "table", "plot", "bench", "experiment", "sweep", "reproduce"):
        assert re.search(rf"^    {command} ", out, re.M), command
    assert main(["nonsense"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wqmix: error: argument command: invalid choice: 'nonsense'") and err.count("\n") == 1
