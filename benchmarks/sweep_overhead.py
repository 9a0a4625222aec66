"""What a sweep on Ray costs against the same runs launched one after another by `wqmix train`.

    python benchmarks/sweep_overhead.py --out /tmp/sweep-overhead

Three measurements, one right after the other on the same machine (nothing else running): the 4
trials of a matrix-game alpha grid (2 seeds each) as 4 `wqmix train --config` processes in a
row; the same sweep with `wqmix sweep --max-concurrent 1` (one trial at a time, like the row of
processes); and the sweep with its default concurrency (as many trials as there are cores).
Wall time from the shell's point of view (process start to exit), so JAX imports, Ray's start
and stop, compiles and checkpoints are all counted. Writes results.json under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SPEC = {
    "name": "overhead",
    "preset": "matrix-game-paper",
    "overrides": {"algo.name": "ow-qmix", "train.total_env_steps": 2000, "log.num_chunks": 10,
                  "log.checkpoint_interval": 500},
    "grid": {"algo.alpha": [0.1, 0.3, 0.5, 0.7]},
    "seeds": 2,
}


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    out = parser.parse_args().out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", "RAY_ADDRESS")}
    spec_path = out / "spec.json"
    spec_path.write_text(json.dumps(SPEC, indent=2))
    wqmix = [sys.executable, "-m", "wqmix.cli"]

    # The trials' resolved configs, exactly as the sweep runs them.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from wqmix.config import to_dict
    from wqmix.sweep.spec import expand, load_spec

    configs = []
    for trial in expand(load_spec(spec_path)):
        path = out / f"{trial.id}.json"
        path.write_text(json.dumps(to_dict(trial.config)))
        configs.append(path)

    results = {"spec": SPEC, "cpus": os.cpu_count()}
    results["train_one_after_another_s"] = sum(
        timed(wqmix + ["train", "--config", str(c), "--out", str(out / "train" / c.stem), "--quiet"], env)
        for c in configs)
    results["sweep_one_at_a_time_s"] = timed(
        wqmix + ["sweep", str(spec_path), "--out", str(out / "sweep-1"), "--max-concurrent", "1"], env)
    results["sweep_default_s"] = timed(wqmix + ["sweep", str(spec_path), "--out", str(out / "sweep-default")], env)
    for key in ("sweep_one_at_a_time_s", "sweep_default_s"):
        results[key.replace("_s", "_ratio")] = results[key] / results["train_one_after_another_s"]
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
