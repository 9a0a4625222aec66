"""JaxMARL's own QMIX on SMAX, for a learning comparison beside `wqmix reproduce smax --protocol jaxmarl`.

Runs the unmodified baseline kept in `../shared/anchors/jaxmarl-qmix/` (FLAIROx/JaxMARL
`baselines/QLearning/qmix_rnn.py`, its hydra config `ql_rnn_smax.yaml`), built the way its own
`single_run` builds it, one seed per compiled call. Only these settings are changed,
each to what our `--protocol jaxmarl` trials use:
- `MAP_NAME` (its config: 3s_vs_5z) and `TOTAL_TIMESTEPS` (its config: 1e7; ours 2M);
- `HIDDEN_SIZE`, `MIXER_EMBEDDING_DIM`, `MIXER_HYPERNET_HIDDEN_DIM`: pymarl's 64 / 32 / 64, as ours
  (its config: 512 / 64 / 256, minutes per rollout on a CPU);
- `NUM_SEEDS`, `SEED`.
Everything else is JaxMARL's: its schedule, ε over 10% of the updates, RAdam at lr 5e-5, targets
every 10 rollouts, rewards scaled by 10, and its greedy tests (512 envs x 128 steps, every 5% of
the updates).

The baseline returns no metrics from its scan; it reports them per update and seed through
`wandb.log`, from a `jax.debug.callback`, when `WANDB_MODE` is not "disabled". This script turns
that on and puts a collector in place of `wandb.log`: the baseline's code runs unchanged, and nothing goes to W&B.

Writes, under OUT/MAP/, a directory that `wqmix table`, `wqmix plot` and `wqmix reproduce smax
--protocol jaxmarl --report` read as a run (algo "jaxmarl-qmix", env "smax"; the report puts
OUT = `<its out>/jaxmarl-qmix` beside its own trials): `metrics.csv` (per seed and rollout: env
steps, loss, mean Q, and the greedy test's win rate and return on the rows where a test ran),
`tests.csv` (only those rows), `summary.json` (per seed: the last test's win rate as
`test_win_rate`, the mean of the last 5 tests; wall time) and `config.json` (the whole config it
ran).

Seeds run one after another, seed k from `PRNGKey(k)`. Each finished seed is kept in
OUT/MAP/seedK.partial.json (written atomically) until the whole run is written, so a run cut short
(a kill, the end of a session) loses only the seed in progress: the same command again trains only
the seeds it lacks, and its files equal those of an uncut run.

`--aligned-dones` runs the baseline with one expression of its TD target changed, for a
diagnosis, never for the comparison: see `TARGET_DONES`. Its run is named
"jaxmarl-qmix-aligned-dones".

Run it with the anchor's Python, which has jaxmarl 0.2.0, flashbax and hydra (`run.sh` makes that
venv; JAX_PLATFORMS=cpu is not needed):

    $ANCHOR_PY benchmarks/jaxmarl_qmix_smax.py --map 3m --seeds 3 --out docs/results/smax-jaxmarl/jaxmarl-qmix
"""

from __future__ import annotations

import argparse
import copy
import csv
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import types
from pathlib import Path

ANCHOR = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "jaxmarl-qmix"
"""Where the unmodified baseline and its config live (`../shared/anchors/jaxmarl-qmix` from the repo root)."""
PYMARL_SIZES = {"HIDDEN_SIZE": 64, "MIXER_EMBEDDING_DIM": 32, "MIXER_HYPERNET_HIDDEN_DIM": 64}
"""Network sizes of our runs (pymarl's / the official defaults), put in place of ql_rnn_smax.yaml's."""
TARGET_DONES = ('1 - minibatch.dones["__all__"][:-1]', '1 - minibatch.dones["__all__"][1:]')
"""The baseline's TD target for step t of a window, `rewards[t] + (1 - dones[t]) * GAMMA *
qmix_next[t + 1]`, masks the bootstrap with the done stored at t. Since JaxMARL's commit 7b17099
(PR #127, a fix of the RNN's resets) that stored done is the one *before* step t (`last_dones`,
the RNN's reset flag); the done *of* step t is the one stored at t + 1. So a battle's last step
bootstraps from the next battle's first state, and a battle's first step does not bootstrap at
all. `--aligned-dones` loads a copy of the baseline's module with the first expression replaced by
the second (the done of step t); the anchor's file stays as it is."""
LAST_TESTS = 5
"""The steadier score, as `wqmix reproduce` reports it: the mean of the last 5 tests."""


def compose(anchor: Path, overrides: list[str]) -> dict:
    """The baseline's config as its `single_run` sees it (config.yaml with the alg section merged in)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(anchor / "config"), version_base=None):
        config = OmegaConf.to_container(hydra_compose(config_name="config", overrides=overrides))
    return {**config, **config["alg"]}


def load_baseline(anchor: Path, aligned_dones: bool):
    """The baseline's module `qmix_rnn`, as it is, or with `TARGET_DONES` applied to a copy."""
    if not aligned_dones:
        return importlib.import_module("qmix_rnn")
    source = (anchor / "qmix_rnn.py").read_text()
    if source.count(TARGET_DONES[0]) != 1:
        raise SystemExit(f"--aligned-dones: {TARGET_DONES[0]!r} is not in {anchor / 'qmix_rnn.py'} exactly once")
    module = types.ModuleType("qmix_rnn")
    module.__file__ = str(anchor / "qmix_rnn.py")
    sys.modules["qmix_rnn"] = module
    exec(compile(source.replace(*TARGET_DONES), f"{module.__file__} (aligned dones)", "exec"), module.__dict__)
    return module


def git_commit() -> str | None:
    """The commit of this script's checkout (None outside one)."""
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout.strip() or None


def seed_path(out: Path, seed: int) -> Path:
    return out / f"seed{seed}.partial.json"


def read_seed(out: Path, seed: int, overrides: list[str], aligned_dones: bool) -> dict | None:
    """A seed that finished in an earlier call of the same command (its rows, run time, compile time), or None."""
    path = seed_path(out, seed)
    if not path.is_file():
        return None
    with open(path) as f:
        kept = json.load(f)
    if kept["overrides"] != overrides or kept["aligned_dones"] != aligned_dones:
        raise SystemExit(f"{path} is from another run ({kept['overrides']}, aligned_dones={kept['aligned_dones']}); "
                         f"remove it or give another --out")
    print(json.dumps({"map": kept["map"], "seed": seed, "kept": str(path)}), flush=True)
    return kept


def write_seed(out: Path, seed: int, overrides: list[str], aligned_dones: bool, rows: list[dict],
               run_s: float, compile_s: float | None) -> dict:
    """Keep a finished seed on disk, atomically (a temporary file renamed over the path)."""
    kept = {"map": out.name, "seed": seed, "overrides": overrides, "aligned_dones": aligned_dones,
            "run_s": run_s, "compile_s": compile_s, "wqmix_commit": git_commit(), "rows": rows}
    path = seed_path(out, seed)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(kept) + "\n")
    os.replace(tmp, path)
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", required=True, help="SMAX map, e.g. 3m, 2s3z, 3s5z")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="the baseline's SEED (its seeds are split from it)")
    parser.add_argument("--env-steps", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--anchor", type=Path, default=ANCHOR)
    parser.add_argument("--aligned-dones", action="store_true",
                        help="a diagnosis: mask the TD target with the done of its own step (TARGET_DONES)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(args.anchor))
    import jax
    import numpy as np

    qmix_rnn = load_baseline(args.anchor, args.aligned_dones)
    env_from_config, make_train = qmix_rnn.env_from_config, qmix_rnn.make_train

    logged: list[dict[str, float]] = []
    qmix_rnn.wandb.log = lambda metrics: logged.append({k: float(np.asarray(v)) for k, v in metrics.items()})
    # One seed per compiled call (NUM_SEEDS 1, as `single_run` with SEED = seed): with two or more
    # vmapped seeds the baseline's logging callback deadlocks here (jax 0.10.2 on CPU).
    overrides = ["+alg=ql_rnn_smax", f"alg.MAP_NAME={args.map}", f"alg.TOTAL_TIMESTEPS={args.env_steps}",
                 "NUM_SEEDS=1", f"SEED={args.seed}", "WANDB_MODE=offline"]
    overrides += [f"alg.{k}={v}" for k, v in PYMARL_SIZES.items()]
    config = compose(args.anchor, overrides)
    env, env_name = env_from_config(copy.deepcopy(config))
    train = make_train(config, env)  # sets config["NUM_UPDATES"]
    out = args.out / args.map
    out.mkdir(parents=True, exist_ok=True)
    # Seed k's run is `PRNGKey(k)` whatever the other seeds, so each finished seed is kept on disk
    # (a kill or the end of a working session loses only the seed in progress) and a rerun of the
    # same command trains only the seeds it lacks.
    finished = {seed: read_seed(out, seed, overrides, args.aligned_dones)
                for seed in range(args.seed, args.seed + args.seeds)}
    compile_s = None
    if not all(finished.values()):
        t0 = time.perf_counter()
        compiled = jax.jit(jax.vmap(train)).lower(jax.random.split(jax.random.PRNGKey(args.seed), 1)).compile()
        compile_s = round(time.perf_counter() - t0, 1)
    columns = {"env_steps": "env_step", "update": "update_steps", "loss": "loss", "mean_q": "qvals",
               "test_win_rate": "test_returned_won_episode", "test_return": "test_returned_episode_returns"}
    rows, run_s = [], []
    for seed in range(args.seed, args.seed + args.seeds):
        if finished[seed] is None:
            logged.clear()
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(jax.random.split(jax.random.PRNGKey(seed), 1)))
            jax.effects_barrier()  # every callback has run
            seconds = round(time.perf_counter() - t0, 1)
            seed_rows = sorted(({"seed": seed, **{ours: record[theirs] for ours, theirs in columns.items()}}
                                for record in logged), key=lambda r: r["update"])
            finished[seed] = write_seed(out, seed, overrides, args.aligned_dones, seed_rows, seconds, compile_s)
            print(json.dumps({"map": args.map, "seed": seed, "run_s": seconds}), flush=True)
        run_s.append(finished[seed]["run_s"])
        rows += finished[seed]["rows"]
    updates = config["NUM_UPDATES"]
    if len(rows) != args.seeds * updates:
        raise SystemExit(f"expected {args.seeds * updates} logged updates, got {len(rows)}")
    for row in rows:
        row["update"], row["env_steps"] = int(row["update"]), int(row["env_steps"])
    test_every = max(int(updates * config["TEST_INTERVAL"]), 1)  # a run of under 20 updates: every one
    # The baseline tests after these updates (and once before training): the rows between repeat the last test.
    def tested(row: dict) -> bool:
        return row["update"] % test_every == 0

    tests = [r for r in rows if tested(r)]
    # Between tests the baseline's rows repeat the last test: left empty in metrics.csv, so that its
    # curves (and a mean of the last tests) are of the tests alone.
    test_columns = ("test_win_rate", "test_return")
    logged_rows = [row if tested(row) else {**row, **dict.fromkeys(test_columns, "")} for row in rows]
    for name, table in (("metrics.csv", logged_rows), ("tests.csv", tests)):
        with open(out / name, "w", newline="") as f:
            writer = csv.DictWriter(f, list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    per_seed = []
    for seed in range(args.seed, args.seed + args.seeds):
        wins = [t["test_win_rate"] for t in tests if t["seed"] == seed]
        per_seed.append({"seed": seed, "test_win_rate": wins[-1], "wqmix_commit": finished[seed]["wqmix_commit"],
                         "compile_s": finished[seed]["compile_s"],
                         f"last_{LAST_TESTS}_tests_win_rate": float(np.mean(wins[-LAST_TESTS:])),
                         "env_steps": int([r for r in rows if r["seed"] == seed][-1]["env_steps"])})
    commit = git_commit()
    summary = {"algo": "jaxmarl-qmix" + ("-aligned-dones" if args.aligned_dones else ""), "env": "smax", "map": args.map, "jaxmarl_env": env_name, "seeds": args.seeds,
               "env_steps_per_seed": updates * config["NUM_STEPS"] * config["NUM_ENVS"],
               "tests_per_seed": len(tests) // max(args.seeds, 1),
               "compile_s": max(finished[seed]["compile_s"] for seed in finished),  # the slowest call's
               "run_s": run_s, "per_seed": per_seed, "wqmix_commit": commit,
               "jax": jax.__version__, "device": str(jax.devices()[0]), "machine": platform.platform(),
               "cpu_count": os.cpu_count(), "command": [sys.executable, *sys.argv]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
    for seed in range(args.seed, args.seed + args.seeds):  # all of it is in metrics.csv now
        seed_path(out, seed).unlink()
    print(json.dumps({k: summary[k] for k in ("map", "run_s", "per_seed")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
