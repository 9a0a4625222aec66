"""Sweeps beyond one Ray node, and beyond the driver's life.

Two nodes on this machine (Ray's `cluster_utils.Cluster`), each with its own temp dir and one
CPU; the second keeps its trials on its own disk (`WQMIX_NODE_DIR`), a folder the driver never
reads, as a node of a cluster without a shared filesystem would:
- a sweep's trials land on both nodes, and those of the second come back to the sweep directory
  through the object store;
- the second node is killed while a trial runs there: the trial runs again on the head, from the
  start (its checkpoints were on the lost node's disk), and ends with the parameters of the
  uninterrupted sweep, bit for bit.
And (`-m slow`) the driver of a sweep (`wqmix sweep`, which started its own local cluster) killed
with SIGKILL mid-trial: the Ray processes it started are counted afterwards, and the same command
run again resumes the unfinished trials from their checkpoints and ends as the uninterrupted sweep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from wqmix.sweep.manifest import Manifest
from wqmix.sweep.runner import NODE_DIR_ENV, RESULT_FILES
from wqmix.sweep.spec import parse_spec
from saved_runs import final_state, metric_rows

pytestmark = pytest.mark.integration  # Ray clusters, killed nodes and drivers

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

STEPS = 1200
SPEC = {
    "name": "two-nodes",
    "preset": "matrix-game-paper",
    "overrides": {
        "algo.name": "vdn",
        # Long enough (one update per episode) that a kill after the first checkpoint lands mid-trial.
        "train": {"total_env_steps": STEPS, "batch_size": 8, "buffer_size": 32},
        "network": {"agent_hidden": 8, "mixer_embed": 4, "hypernet_embed": 8},
        "log": {"num_chunks": 12, "checkpoint_interval": 1, "keep_checkpoints": 2, "test_episodes": 2},
    },
    "grid": {"optim.lr": [0.001, 0.01]},
    "seeds": 1,
    "retries": 2,
}


def short_dir(prefix: str) -> str:
    """A short absolute path: Ray's socket paths under a node's temp dir must stay within the
    107 characters of a Unix socket name, which pytest's tmp_path can exceed."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def same_results(a: Path, b: Path) -> None:
    """Final training state (parameters, optimiser, buffer, keys), metrics and scores equal, bit for bit."""
    step_a, state_a, _ = final_state(a)
    step_b, state_b, _ = final_state(b)
    assert step_a == step_b == STEPS
    leaves_a = jax.tree_util.tree_leaves(state_a.replace(key=jax.random.key_data(state_a.key)))
    leaves_b = jax.tree_util.tree_leaves(state_b.replace(key=jax.random.key_data(state_b.key)))
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert metric_rows(a) == metric_rows(b)
    per_seed_a, per_seed_b = (json.loads((d / "summary.json").read_text())["per_seed"] for d in (a, b))
    assert per_seed_a == per_seed_b


@pytest.fixture(scope="module")
def two_nodes():
    from ray.cluster_utils import Cluster

    dirs = [short_dir("wq-head-"), short_dir("wq-node-"), short_dir("wq-disk-")]
    # Health checks every 0.5 s: a lost node is noticed in seconds rather than Ray's default half minute.
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "temp_dir": dirs[0],
        "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4}})
    second = cluster.add_node(num_cpus=1, temp_dir=dirs[1], env_vars={NODE_DIR_ENV: dirs[2]})
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    try:
        yield cluster, second, Path(dirs[2])
    finally:
        ray.shutdown()
        cluster.shutdown()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def uninterrupted(two_nodes, tmp_path_factory):
    from wqmix.sweep.runner import run_sweep

    out = tmp_path_factory.mktemp("sweep") / "uninterrupted"
    run_sweep(parse_spec(SPEC), out)
    return out


def where_it_ran(sweep_dir: Path, trial_id: str) -> Path:
    """The run directory the trial trained in (the sweep's, or the node's own)."""
    return Path(Manifest.read(sweep_dir).trials[trial_id]["worker"]["run_dir"])


def test_trials_land_on_both_nodes_and_come_back_through_the_object_store(two_nodes, uninterrupted):
    cluster, second, node_disk = two_nodes
    trials = Manifest.read(uninterrupted).trials
    assert [t["status"] for t in trials.values()] == ["done", "done"]
    nodes = {t["worker"]["node_id"]: trial_id for trial_id, t in trials.items()}
    assert set(nodes) == {cluster.head_node.node_id, second.node_id}
    remote = nodes[second.node_id]
    ran_in = where_it_ran(uninterrupted, remote)
    assert ran_in.is_relative_to(node_disk) and (ran_in / "checkpoints").is_dir()
    # In the sweep directory: the small result files, sent back by the task; never its checkpoints.
    in_sweep = uninterrupted / "trials" / remote
    assert sorted(p.name for p in in_sweep.iterdir()) == sorted(RESULT_FILES)
    for name in RESULT_FILES:
        assert (in_sweep / name).read_text() == (ran_in / name).read_text()
    local = nodes[cluster.head_node.node_id]
    assert where_it_ran(uninterrupted, local) == (uninterrupted / "trials" / local).resolve()


@pytest.mark.slow  # CI time: the two-node test above stays in the integration tier
def test_a_node_lost_mid_trial_is_run_again_on_the_head_and_ends_as_the_uninterrupted_sweep(
        two_nodes, uninterrupted, tmp_path):
    from wqmix.sweep.runner import run_sweep

    cluster, second, node_disk = two_nodes
    out = tmp_path / "node-lost"
    lost = []

    def kill_the_node_after_its_first_checkpoint():
        deadline = time.time() + 240
        while time.time() < deadline:
            for checkpoints in node_disk.glob(f"{out.name}-*/*/checkpoints"):
                if any(p.name.isdigit() for p in checkpoints.iterdir()):
                    lost.append(checkpoints.parent.name)
                    cluster.remove_node(second, allow_graceful=False)
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_the_node_after_its_first_checkpoint, daemon=True)
    killer.start()
    run_sweep(parse_spec(SPEC), out)
    killer.join(timeout=5)
    assert lost, "no trial reached a checkpoint on the second node"
    trials = Manifest.read(out).trials
    assert [t["status"] for t in trials.values()] == ["done", "done"]
    victim = trials[lost[0]]
    assert victim["attempts"] == 2 and victim["worker"]["node_id"] == cluster.head_node.node_id
    # Its checkpoints were on the lost node's disk: it ran again from the start, in the sweep directory.
    assert not victim["worker"]["resumed"] and where_it_ran(out, lost[0]) == (out / "trials" / lost[0]).resolve()
    for trial_id in trials:
        same_results(where_it_ran(out, trial_id), where_it_ran(uninterrupted, trial_id))


def descendants(pid: int) -> dict[int, str]:
    try:
        return {p.pid: " ".join(p.cmdline()[:2]).strip() for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return {}


def alive(pids) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.slow  # about a minute of waiting for Ray's agents to exit
def test_a_driver_killed_mid_sweep_leaves_no_ray_process_and_the_rerun_resumes(uninterrupted, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    out = tmp_path / "driver-killed"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-m", "wqmix.cli", "sweep", str(spec), "--out", str(out), "--max-concurrent", "2"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                              start_new_session=True)
    started: dict[int, str] = {}
    deadline = time.time() + 240
    while time.time() < deadline and driver.poll() is None:
        started.update(descendants(driver.pid))  # every process it started, before they can outlive it
        checkpoints = [p for p in out.glob("trials/*/checkpoints/*") if p.name.isdigit()]
        if checkpoints:
            break
        time.sleep(0.01)
    assert driver.poll() is None, driver.stderr.read()
    started.update(descendants(driver.pid))
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    killed_at = time.time()
    time.sleep(5)
    left_after_5s = {started[p] for p in alive(started)}
    # Measured here: the cluster's GCS, raylet and workers (the trials) are gone within 5 s; Ray's
    # dashboard agent and runtime-env agent see their raylet gone and exit on their own, in about
    # a minute (they first try to report the raylet's death to the GCS, which is gone too).
    assert left_after_5s <= {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}, left_after_5s
    while alive(started) and time.time() < killed_at + 180:
        time.sleep(1)
    left = alive(started)
    assert started and not left, f"{len(left)} of {len(started)} processes outlived the driver by 180 s: " + (
        ", ".join(started[p] for p in left))
    print(f"driver killed: {len(started)} processes it started, {len(left_after_5s)} alive after 5 s "
          f"({', '.join(sorted(left_after_5s))}), none after {time.time() - killed_at:.0f} s")
    assert {t["status"] for t in Manifest.read(out).trials.values()} & {"running"}  # as the kill left it

    rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    trials = Manifest.read(out).trials
    assert [t["status"] for t in trials.values()] == ["done", "done"]
    assert any(t["worker"]["resumed"] for t in trials.values())  # from the checkpoint the kill left
    for trial_id in trials:
        same_results(out / "trials" / trial_id, where_it_ran(uninterrupted, trial_id))
