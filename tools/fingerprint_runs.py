"""Fingerprints of short training runs, to show that a refactoring changed nothing learned.

For every registered algorithm, trains 2 seeds on the matrix game and on a short predator-prey
run through `wqmix train`, then records each run's metrics rows (every column but wall time) and
its final online and target parameters. `compare` reports the largest difference between two
fingerprint files (0.0: bit-identical).

    python tools/fingerprint_runs.py record OUT.npz [--algos a,b]   # on one commit
    python tools/fingerprint_runs.py compare A.npz B.npz            # exit 1 unless bit-identical

The code under test is whatever `wqmix` imports (set PYTHONPATH to another checkout's src/).
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RUNS = {
    "matrix": ["--env", "matrix-game", "--train.total-env-steps", "600", "--train.batch-size", "8"],
    "pp": ["--env", "predator-prey", "--train.total-env-steps", "1500", "--train.batch-size", "4",
           "--algo.target-update-interval", "3", "--log.num-chunks", "3"],
}
TIME_COLUMNS = {"wall_time", "steps_per_s"}  # measured time, not what was learned


def run_arrays(run_dir: Path) -> dict[str, np.ndarray]:
    import orbax.checkpoint as ocp

    out = {}
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    for column in rows[0]:
        if column not in TIME_COLUMNS:
            out[f"metrics/{column}"] = np.asarray([float(r[column]) if r[column] not in ("", "None") else np.nan
                                                  for r in rows])
    checkpoints = run_dir / "checkpoints"
    last = max(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
    state = ocp.StandardCheckpointer().restore((checkpoints / str(last) / "state").resolve())
    learner = state["learner"]
    for group in ("params", "target_params"):
        leaves = _flatten(learner[group], f"{group}")
        out.update(leaves)
    return out


def _flatten(tree, prefix: str) -> dict[str, np.ndarray]:
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    return {prefix: np.asarray(tree)}


def record(out: str, algos: list[str] | None) -> None:
    from wqmix.config import ALGORITHMS

    arrays = {}
    for algo in algos or list(ALGORITHMS):
        for run, args in RUNS.items():
            with tempfile.TemporaryDirectory() as tmp:
                command = ["wqmix", "train", "--algo", algo, *args, "--num-seeds", "2", "--seed", "3",
                           "--quiet", "--out", f"{tmp}/run"]
                subprocess.run(command, check=True)
                for name, array in run_arrays(Path(tmp) / "run").items():
                    arrays[f"{algo}/{run}/{name}"] = array
            print(f"recorded {algo} {run}", flush=True)
    np.savez(out, **arrays)


def compare(a: str, b: str) -> int:
    x, y = np.load(a), np.load(b)
    if set(x.files) != set(y.files):
        print("different keys:", sorted(set(x.files) ^ set(y.files)))
        return 1
    worst, where = 0.0, None
    for key in sorted(x.files):
        p, q = x[key], y[key]
        if p.shape != q.shape:
            print(f"{key}: shape {p.shape} vs {q.shape}")
            return 1
        if not np.array_equal(p, q, equal_nan=True):
            diff = float(np.nanmax(np.abs(p - q) / np.maximum(np.abs(p), 1e-12)))
            if diff > worst:
                worst, where = diff, key
    print(f"{len(x.files)} arrays; largest relative difference {worst:g}" + (f" at {where}" if where else ""))
    return 0 if worst == 0.0 else 1


if __name__ == "__main__":
    if sys.argv[1] == "record":
        algos = sys.argv[sys.argv.index("--algos") + 1].split(",") if "--algos" in sys.argv else None
        record(sys.argv[2], algos)
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
