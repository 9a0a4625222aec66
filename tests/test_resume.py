"""Checkpoints and exact resume: a training process killed with SIGKILL at a random moment and
resumed ends with the same parameters, optimiser state, buffer, keys and metrics, bit for bit,
as a run that was never interrupted. Also: NaN stops the run naming the step; Ctrl-C saves."""

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from wqmix.checkpoint import Checkpointer
from wqmix.cli import main
from wqmix.experiments.provenance import Code, trial_provenance
from saved_runs import final_state, metric_rows

pytestmark = pytest.mark.integration  # kills and resumes of real runs

ARGS = ["--algo", "cw-qmix", "--num-seeds", "2", "--train.total-env-steps", "1200", "--train.batch-size", "8",
        "--train.buffer-size", "64", "--network.agent-hidden", "8", "--network.mixer-embed", "4",
        "--network.hypernet-embed", "8", "--network.central-agent-hidden", "8",
        "--network.central-mixer-hidden", "16", "--log.num-chunks", "12", "--log.checkpoint-interval", "1",
        "--log.keep-checkpoints", "2", "--log.test-episodes", "2", "--quiet"]


def wqmix(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "wqmix.cli", "train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    process = wqmix(*ARGS, "--out", str(out))
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return out


def kill_when(process, checkpoints: Path, count: int, extra_delay: float):
    """SIGKILL the process once `count` checkpoints were written, plus a random delay."""
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        done = [p for p in checkpoints.glob("*") if p.name.isdigit()] if checkpoints.exists() else []
        if len(done) >= count or max((int(p.name) for p in done), default=0) >= 100 * count:
            break
        time.sleep(0.02)
    time.sleep(extra_delay)
    process.send_signal(signal.SIGKILL)
    process.wait()


# Killed after 1 and 9 checkpoints too with `pytest -m slow` (each is a whole run again).
@pytest.mark.parametrize("kill_after", [pytest.param(1, marks=pytest.mark.slow), 4, pytest.param(9, marks=pytest.mark.slow)])
def test_sigkill_then_resume_is_bit_identical(reference, tmp_path, kill_after):
    rng = random.Random(kill_after)
    out = tmp_path / "run"
    process = wqmix(*ARGS, "--out", str(out))
    kill_when(process, out / "checkpoints", kill_after, rng.uniform(0.0, 0.4))
    assert process.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists() or kill_after == 9  # killed mid-run (or just at its end)

    resumed = wqmix("--resume", str(out))
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err

    ref_step, ref_state, ref_meta = final_state(reference)
    step, state, meta = final_state(out)
    assert step == ref_step == 1200 and meta["next_chunk"] == ref_meta["next_chunk"] == 12
    ref_leaves = jax.tree_util.tree_leaves(jax.tree_util.tree_map(np.asarray, ref_state.replace(key=jax.random.key_data(ref_state.key))))
    leaves = jax.tree_util.tree_leaves(jax.tree_util.tree_map(np.asarray, state.replace(key=jax.random.key_data(state.key))))
    assert len(leaves) == len(ref_leaves)
    for a, b in zip(leaves, ref_leaves):
        np.testing.assert_array_equal(a, b)
    assert metric_rows(out) == metric_rows(reference)
    summary, ref_summary = (json.loads((d / "summary.json").read_text()) for d in (out, reference))
    assert summary["per_seed"] == ref_summary["per_seed"] and summary["resumed"]
    # The training time counts the part before the kill (saved with the checkpoint) too.
    assert summary["total_run_s"] > summary["run_s"] or kill_after == 9


def test_resuming_a_finished_run_keeps_its_results(reference, tmp_path):
    """What `wqmix reproduce` does to a trial trained by hand: the resume trains nothing, and
    its summary must still give the run's final train return (from the log) and its greedy
    test, not None; its rate is None (nothing ran), not 0, and the whole run's rate is the
    first call's (it was the only one that trained)."""
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    summary, ref_summary = (json.loads((d / "summary.json").read_text()) for d in (out, reference))
    assert summary["per_seed"] == ref_summary["per_seed"] and summary["env_steps_per_s"] is None
    # Not equal: the resume's time is counted from the last checkpoint, saved just before the end.
    assert summary["total_env_steps_per_s"] == pytest.approx(ref_summary["env_steps_per_s"], rel=0.25)
    last = {}
    for line in (reference / "metrics.jsonl").read_text().splitlines():
        last[json.loads(line)["seed"]] = json.loads(line)["train_return"]
    assert [s["final_train_return"] for s in summary["per_seed"]] == [last[0], last[1]]
    assert all(s["final_train_return"] is not None for s in summary["per_seed"])
    assert metric_rows(out) == metric_rows(reference)
    # The resume is in the record, and it is the code of its final evaluation, not of training.
    events = [json.loads(line) for line in (out / "provenance.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["train", "final-evaluation", "resume", "final-evaluation"]
    trial = trial_provenance(out)
    assert len(trial.trained_on) == 1 and trial.evaluated_on == Code.of(events[-1])


def test_nan_stops_the_run_naming_the_step(tmp_path, capsys):
    status = main(["train", *ARGS[:-1], "--optim.lr", "1e30", "--out", str(tmp_path)])
    assert status == 1
    err = capsys.readouterr().err
    assert "training diverged:" in err and "NaN or inf" in err and "env step 100" in err, err
    # The last checkpoint holds finite parameters (it was saved before the bad chunk).
    steps = Checkpointer(tmp_path, keep=2).all_steps()
    assert max(steps, default=0) < 100 or steps == []


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_ctrl_c_or_sigterm_saves_a_checkpoint_and_exits(tmp_path, sig):
    out = tmp_path / "run"
    process = wqmix(*[a for a in ARGS if a != "1"][:0], *ARGS[:-5], "--log.checkpoint-interval", "0",
                    "--log.keep-checkpoints", "2", "--out", str(out))
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "metrics.jsonl").exists():
        time.sleep(0.05)
    while time.time() < deadline and not (out / "metrics.jsonl").read_text():
        time.sleep(0.02)
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "checkpoint saved" in err and "--resume" in err
    steps = Checkpointer(out, keep=2).all_steps()
    assert len(steps) == 1 and 0 < steps[0] <= 1200
