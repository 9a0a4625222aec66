"""Sweeps on a real local Ray cluster (2 worker processes): a 3-trial x 2-seed matrix-game grid
(VDN over the learning rate: the cheapest learner to compile, the sweep machinery is the same for
every algorithm) runs to completion and `wqmix table` lists it; a worker killed with SIGKILL mid-trial is retried
and resumes from its checkpoint to the same final parameters, bit for bit; rerunning a finished
sweep runs nothing; Ctrl-C leaves the unfinished trials pending and a rerun runs only those; a
bad spec fails before Ray starts, naming the field."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from wqmix.cli import main
from wqmix.errors import ConfigError
from wqmix.sweep.manifest import Manifest
from wqmix.sweep.spec import expand, parse_spec
from saved_runs import final_state, metric_rows

pytestmark = pytest.mark.integration  # Ray sweeps, kills and resumes

ray = pytest.importorskip("ray")

LRS = [0.001, 0.003, 0.01]  # three trials on two workers: one waits for a free worker
SPEC = {
    "name": "lr-grid",
    "preset": "matrix-game-paper",
    "overrides": {
        "algo.name": "vdn",
        "train": {"total_env_steps": 96, "batch_size": 8, "buffer_size": 32},
        "network": {"agent_hidden": 8, "mixer_embed": 4, "hypernet_embed": 8, "central_agent_hidden": 8,
                    "central_mixer_hidden": 16},
        "log": {"num_chunks": 4, "checkpoint_interval": 1, "keep_checkpoints": 2, "test_episodes": 2},
    },
    "grid": {"optim.lr": LRS},
    "seeds": 2,
    "retries": 2,
}


def spec_with(lrs):
    return parse_spec({**SPEC, "grid": {"optim.lr": lrs}})


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the module: 2 CPUs, so 2 worker processes run trials at once.
    Its workers share one XLA compilation cache (a sweep's trials share the sweep's), so trials
    that repeat a configuration load its compiled functions instead of compiling them again
    (conftest.py sets the cache for the session; Ray's workers inherit it)."""
    assert os.environ.get("JAX_COMPILATION_CACHE_DIR")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def finished(cluster, tmp_path_factory):
    from wqmix.sweep.runner import run_sweep

    out = tmp_path_factory.mktemp("sweep") / "lr-grid"
    run_sweep(parse_spec(SPEC), out)
    return out


def assert_same_results(a: Path, b: Path):
    step_a, state_a, _ = final_state(a)
    step_b, state_b, _ = final_state(b)
    assert step_a == step_b == SPEC["overrides"]["train"]["total_env_steps"]
    leaves_a = jax.tree_util.tree_leaves(state_a.replace(key=jax.random.key_data(state_a.key)))
    leaves_b = jax.tree_util.tree_leaves(state_b.replace(key=jax.random.key_data(state_b.key)))
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert metric_rows(a) == metric_rows(b)
    per_seed = [json.loads((d / "summary.json").read_text())["per_seed"] for d in (a, b)]
    assert per_seed[0] == per_seed[1]


def test_sweep_runs_every_trial_and_the_table_lists_them(finished, capsys):
    manifest = Manifest.read(finished)
    trials = list(manifest.trials.values())
    assert [t["status"] for t in trials] == ["done"] * len(LRS)
    assert [t["params"] for t in trials] == [{"optim.lr": lr} for lr in LRS]
    assert len({t["worker"]["pid"] for t in trials}) == 2  # two worker processes shared the trials
    for trial, lr in zip(trials, LRS):
        run = finished / trial["run_dir"]
        config = json.loads((run / "config.json").read_text())
        assert config["optim"]["lr"] == lr and config["algo"]["name"] == "vdn" and config["num_seeds"] == 2
        assert json.loads((run / "summary.json").read_text())["seeds"] == [0, 1]
    capsys.readouterr()
    assert main(["table", str(finished)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "swept" in lines[0]
    rows = lines[2:]
    assert len(rows) == len(LRS)
    for row, lr in zip(rows, LRS):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[:3] == ["matrix-game", "vdn", f"optim.lr={lr}"] and cells[4] == "2"


def test_plot_draws_one_curve_per_trial(finished, tmp_path, capsys):
    assert main(["plot", str(finished), "--out", str(tmp_path / "curves"), "--reps", "50"]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 0 and (tmp_path / "curves.pdf").is_file()
    from wqmix.experiments.results import load_runs

    assert [r.variant for r in load_runs([finished])] == [f"optim.lr={lr}" for lr in LRS]


def test_sweep_status_prints_the_manifest(finished, capsys):
    assert main(["sweep", "status", str(finished)]) == 0
    out = capsys.readouterr().out
    assert out.count("done") >= 3 and "trial-002" in out and "optim.lr=0.01" in out


def test_rerunning_a_finished_sweep_runs_nothing(finished, capsys):
    from wqmix.sweep.runner import run_sweep

    before = {p: p.stat().st_mtime_ns for p in finished.rglob("summary.json")}
    attempts = [t["attempts"] for t in Manifest.read(finished).trials.values()]
    run_sweep(parse_spec(SPEC), finished)
    assert "nothing to run" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in finished.rglob("summary.json")} == before
    assert [t["attempts"] for t in Manifest.read(finished).trials.values()] == attempts


def test_a_killed_worker_is_retried_from_its_checkpoint_bit_identically(finished, tmp_path):
    from wqmix.sweep.runner import run_sweep

    out = tmp_path / "killed"
    victim = out / "trials" / "trial-001"
    killed = []

    def kill_after_first_checkpoint():
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            checkpoints = victim / "checkpoints"
            if (victim / "worker.json").is_file() and checkpoints.is_dir() and any(
                    p.name.isdigit() for p in checkpoints.iterdir()):
                pid = json.loads((victim / "worker.json").read_text())["pid"]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_after_first_checkpoint, daemon=True)
    killer.start()
    run_sweep(spec_with(LRS[:2]), out)
    killer.join(timeout=5)
    assert killed, "the trial finished before a checkpoint could be seen"
    trials = Manifest.read(out).trials
    assert [t["status"] for t in trials.values()] == ["done", "done"]
    assert trials["trial-001"]["attempts"] == 2 and trials["trial-000"]["attempts"] == 1
    assert trials["trial-001"]["worker"]["resumed"] and trials["trial-001"]["worker"]["pid"] != killed[0]
    for trial_id in ("trial-000", "trial-001"):
        assert_same_results(out / "trials" / trial_id, finished / "trials" / trial_id)


def trial_held_until_stopped(config_data, run_dir, attempt, command, compile_cache):
    """`run_trial`, except that in trial-001's first attempt `train_run` waits for the sweep's stop
    (`ray.cancel`: a KeyboardInterrupt in the worker) before it trains. The real trial, 96 steps
    with its functions in the compile cache, can end inside the tenth of a second a stop takes to
    reach it (it did, twice, on a loaded machine), and is then rightly `done`."""
    import wqmix.driver
    from wqmix.sweep.runner import run_trial

    if attempt > 1 or Path(run_dir).name != "trial-001":
        return run_trial(config_data, run_dir, attempt, command, compile_cache)
    train_run = wqmix.driver.train_run

    def held(*args, **kwargs):
        # Short sleeps: Ray's stop raises in the worker between bytecodes, never inside one long
        # sleep. It comes in well under a second (the test checks it did).
        for _ in range(6000):
            time.sleep(0.1)
        return train_run(*args, **kwargs)

    wqmix.driver.train_run = held  # run_trial imports it when called; Ray reuses this worker after
    try:
        return run_trial(config_data, run_dir, attempt, command, compile_cache)
    finally:
        wqmix.driver.train_run = train_run


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_ctrl_c_or_kill_leaves_unfinished_trials_pending_and_a_rerun_runs_only_those(finished, tmp_path, monkeypatch,
                                                                                   stop_signal):
    import ray.cloudpickle

    from wqmix.sweep import runner
    from wqmix.sweep.runner import SweepInterrupted, run_sweep

    out = tmp_path / "interrupted"
    spec = spec_with(LRS[:2])
    # Ctrl-C (or `kill`) in the driver once trial-001 is running in its worker (held there before
    # it trains: `trial_held_until_stopped`), sent from the driver's own loop (its `ray.wait`), so
    # the signal lands inside the sweep's loop whatever the timing. Python's
    # Ctrl-C handler is installed only when SIGINT is not ignored at start, and a shell starts
    # background jobs (`cmd &`) with it ignored: the test installs it, as an interactive shell has
    # it. SIGTERM is left as `ray.init` set it (an exit): the sweep itself must turn it into a stop.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    sigterm_before = signal.getsignal(signal.SIGTERM)
    wait = ray.wait

    def wait_then_interrupt(*args, **kwargs):
        if not sent and (out / "trials" / "trial-001" / "worker.json").is_file():
            sent.append(time.monotonic())
            # Without the sweep's own handler SIGTERM would exit (Ray's) or end pytest: fail cleanly.
            assert signal.getsignal(stop_signal) not in (signal.SIG_DFL, signal.SIG_IGN, sigterm_before), "no stop"
            os.kill(os.getpid(), stop_signal)
            time.sleep(0.1)  # the handler raises KeyboardInterrupt here, in the main thread
        return wait(*args, **kwargs)

    sent: list[float] = []
    monkeypatch.setattr(ray, "wait", wait_then_interrupt)
    real_run_trial = runner.run_trial
    monkeypatch.setattr(runner, "run_trial", trial_held_until_stopped)
    module = sys.modules[__name__]
    ray.cloudpickle.register_pickle_by_value(module)  # the workers cannot import this test module
    try:
        with pytest.raises(SweepInterrupted):
            run_sweep(spec, out, max_concurrent=1)  # one at a time: trial-000 is done when trial-001 starts
    finally:
        signal.signal(signal.SIGINT, previous)
        ray.cloudpickle.unregister_pickle_by_value(module)
    monkeypatch.setattr(ray, "wait", wait)
    monkeypatch.setattr(runner, "run_trial", real_run_trial)  # the rerun trains trial-001
    # The held trial ended at the stop (cancelled in its worker), not when the sweep gave up on it.
    assert sent and time.monotonic() - sent[0] < runner.STOP_GRACE_S / 4
    assert not (out / "trials" / "trial-001" / "summary.json").exists()
    assert signal.getsignal(signal.SIGTERM) is sigterm_before  # the sweep's handler is gone after it
    trials = Manifest.read(out).trials
    assert trials["trial-000"]["status"] == "done" and trials["trial-001"]["status"] == "pending"
    first_summary = (out / "trials" / "trial-000" / "summary.json").stat().st_mtime_ns

    run_sweep(spec, out)
    trials = Manifest.read(out).trials
    assert [t["status"] for t in trials.values()] == ["done", "done"]
    assert trials["trial-000"]["attempts"] == 1 and trials["trial-001"]["attempts"] == 2
    assert (out / "trials" / "trial-000" / "summary.json").stat().st_mtime_ns == first_summary
    assert_same_results(out / "trials" / "trial-001", finished / "trials" / "trial-001")


def test_a_trial_already_finished_in_its_run_directory_is_not_trained_again(finished, tmp_path):
    import shutil

    from wqmix import config as cfg
    from wqmix.sweep.runner import finished_summary, run_trial

    entry = Manifest.read(finished).trials["trial-000"]
    run_dir = tmp_path / "adopted"
    shutil.copytree(finished / "trials" / "trial-000", run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    result = run_trial(entry["config"], str(run_dir), 2, ["wqmix", "sweep"], str(tmp_path / "cache"))
    assert result["summary"] == json.loads(before["summary.json"])
    assert result["files"]["metrics.csv"] == before["metrics.csv"].decode()
    # Nothing rewritten, nothing added (a resume would append to provenance.jsonl and rewrite the summary).
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    # Another config, a longer run, or no summary (the run did not end): not finished.
    config = cfg.from_dict(entry["config"])
    assert finished_summary(run_dir, config) is not None
    assert finished_summary(run_dir, cfg.apply_override(config, "optim.lr", "0.5")) is None
    assert finished_summary(run_dir, cfg.apply_override(config, "train.total_env_steps", "192")) is None
    (run_dir / "summary.json").unlink()
    assert finished_summary(run_dir, config) is None


def test_a_failing_trial_is_marked_failed_and_the_rest_goes_on(cluster, tmp_path, monkeypatch):
    from wqmix.sweep import runner

    spec = spec_with([0.001])
    trials = expand(spec)
    manifest_dir = tmp_path / "failing"
    # An env whose payoff makes a trial fail inside the worker (train_run re-validates) cannot be
    # written through the spec (it is checked first), so the run directory is made unwritable.
    (manifest_dir / "trials").mkdir(parents=True)
    (manifest_dir / "trials" / trials[0].id).write_text("a file where the run directory should be")
    manifest = runner.run_sweep(spec, manifest_dir)
    entry = manifest.trials[trials[0].id]
    assert entry["status"] == "failed" and "cannot write" in entry["error"] and "\n" not in entry["error"]


@pytest.mark.parametrize("spec, field", [
    ({"grid": {"algo.alpah": [0.1]}}, "grid.algo.alpah"),
    ({"grid": {"algo.alpha": []}}, "grid.algo.alpha"),
    ({"grid": {"algo.alpha": ["high"]}}, "grid.algo.alpha"),
    ({"random": {"space": {"optim.lr": {"loguniform": [0.01, 0.001]}}}}, "random.space.optim.lr.loguniform"),
    ({"random": {"space": {"optim.lr": {"normal": [0.0, 1.0]}}}}, "random.space.optim.lr"),
    ({"overrides": {"train.batch_size": 2.5}}, "overrides.train.batch_size"),
    ({"seeds": 0}, "seeds"),
    ({"resources": {"gpu": 1}}, "resources.gpu"),
    ({"grids": {}}, "grids"),
])
def test_bad_specs_name_the_field(spec, field):
    with pytest.raises(ConfigError) as e:
        parse_spec(spec)
    assert str(e.value).startswith(f"{field} = ")


def test_grid_and_random_draws_are_fixed_by_the_spec_seed():
    spec = {"grid": {"algo.name": ["qmix", "cw-qmix"]},
            "random": {"samples": 3, "seed": 7, "space": {"optim.lr": {"loguniform": [1e-4, 1e-2]},
                                                         "exploration.epsilon_anneal_steps": {"randint": [10, 20]}}}}
    trials = expand(parse_spec(spec))
    assert [t.id for t in trials] == [f"trial-{i:03d}" for i in range(6)]
    assert [t.config.algo.name for t in trials] == ["qmix"] * 3 + ["cw-qmix"] * 3
    assert [t.params for t in trials] == [t.params for t in expand(parse_spec(spec))]  # a rerun: same trials
    for t in trials:
        assert 1e-4 <= t.config.optim.lr <= 1e-2 and t.config.optim.lr == t.params["optim.lr"]
        assert 10 <= t.config.exploration.epsilon_anneal_steps <= 20
    assert len({t.params["optim.lr"] for t in trials}) == 6


def test_a_bad_spec_fails_fast_from_the_command_line_before_ray(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("preset: matrix-game-paper\ngrid:\n  algo.alpha: [0.1, 1.5]\n")
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1"}  # joining this would hang or fail: Ray must not start
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "wqmix.cli", "sweep", str(path), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, env=env, timeout=60)
    elapsed = time.perf_counter() - start
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"wqmix sweep: error: {path}: grid.algo.alpha = 1.5 is invalid: must be in (0, 1]"]
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    assert not (tmp_path / "o").exists()
