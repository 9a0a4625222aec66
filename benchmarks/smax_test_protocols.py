"""One trained SMAX policy measured by both greedy test protocols of the `--protocol jaxmarl`
comparison, to tell how much the protocol alone moves a win rate (docs/results/smax-jaxmarl/
differences.md lists the test protocol among what differs between our QMIX and JaxMARL's).

For each run directory given (a trial of `wqmix reproduce smax`, with its checkpoints), the
policy of its latest checkpoint plays, greedily (epsilon 0):
- ours, whole battles: `--battles` test battles from reset, each played to its end; the win rate
  is won / played. Our trials log 32 of these every 10k env steps and at the end (summary.json's
  `test_win_rate`, given beside for reference); more battles only narrow the binomial noise;
- JaxMARL's, windows: `--windows` envs (its TEST_NUM_ENVS, 512) each step `--window-steps` (its
  TEST_NUM_STEPS, 128) steps of an auto-reset stream from reset; the win rate is won / finished
  over the battles that end inside those steps (its `nanmean` of `returned_won_episode` where
  `returned_episode`), so a battle still going at the last step is not counted, and long
  battles count less than short ones.
The windows here run on our env wrapper: what JaxMARL's wrapper also does at a battle boundary
inside a window (it zeroes the agents' first observation of the next battle, see
differences.md) is not copied; only the counting is.

    python benchmarks/smax_test_protocols.py RUN_DIR... [--battles 1024] [--out FILE.json]

Each run uses one key, `fold_in(key(--seed), run index)`, split for the two protocols. Prints a
table; `--out` also writes it as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from wqmix.config import from_dict
from wqmix.driver import restore_params
from wqmix.evaluate import greedy_episodes
from wqmix.run_dir import git_provenance, write_json_atomic
from wqmix.train import Trainer

JAXMARL_TEST_NUM_ENVS = 512
"""Envs of JaxMARL's greedy test (`TEST_NUM_ENVS` in ql_rnn_smax.yaml)."""
JAXMARL_TEST_NUM_STEPS = 128
"""Steps of each env in JaxMARL's greedy test (`TEST_NUM_STEPS` in ql_rnn_smax.yaml)."""


def standard_error(wins: int, battles: int) -> float:
    """Binomial standard error of a win rate of `wins` out of `battles`."""
    rate = wins / battles
    return math.sqrt(rate * (1.0 - rate) / battles)


def measure(run_dir: Path, key: jax.Array, battles: int, windows: int, window_steps: int) -> dict:
    """One row of the table: the run's first seed, at its latest checkpoint, by both protocols."""
    config = from_dict(json.loads((run_dir / "config.json").read_text()))
    trainer = Trainer(config)
    step, params = restore_params(run_dir, trainer)
    params = jax.tree_util.tree_map(lambda x: x[0], params)  # the run's first seed
    whole_key, window_key, stream_key = jax.random.split(key, 3)

    whole = jax.jit(lambda k: greedy_episodes(trainer, params, k, battles))(whole_key)
    won = int(np.sum(whole.episode_won))

    window_config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, collector="stream", num_envs=windows, stream_window=window_steps))
    windowed = Trainer(window_config)

    def play_windows(k_stream, k_window):
        stream = windowed.start_stream(k_stream)
        return windowed.stream_rollout(k_window, params["agent"], jnp.float32(0.0), stream)[1]

    stats = jax.jit(play_windows)(stream_key, window_key)
    window_won, finished = int(np.sum(stats.episode_won)), int(np.sum(stats.episodes_finished))
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "run": run_dir.name, "checkpoint_env_steps": step, "seed": config.seed,
        "logged_final_win_rate": summary["per_seed"][0].get("test_win_rate"),
        "logged_final_battles": summary["per_seed"][0].get("test_episodes"),
        "whole_battles": battles, "whole_won": won, "whole_win_rate": won / battles,
        "whole_standard_error": standard_error(won, battles),
        "whole_mean_length": float(np.mean(whole.episode_length)),
        "windows": windows, "window_steps": window_steps, "window_battles_finished": finished,
        "window_won": window_won, "window_win_rate": window_won / finished if finished else None,
        "window_standard_error": standard_error(window_won, finished) if finished else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--battles", type=int, default=1024, help="whole test battles per run (default 1024)")
    parser.add_argument("--windows", type=int, default=JAXMARL_TEST_NUM_ENVS)
    parser.add_argument("--window-steps", type=int, default=JAXMARL_TEST_NUM_STEPS)
    parser.add_argument("--seed", type=int, default=0, help="RNG seed of the test battles")
    parser.add_argument("--out", type=Path, help="also write the rows here (JSON)")
    args = parser.parse_args()
    key = jax.random.key(args.seed)
    rows = []
    print("| run | checkpoint | logged final (battles) | whole battles: win rate ± s.e. (won/played, mean length) "
          "| JaxMARL's windows: win rate ± s.e. (won/finished) |")
    print("|---|---:|---:|---:|---:|")
    for index, run_dir in enumerate(args.run_dirs):
        row = measure(run_dir, jax.random.fold_in(key, index), args.battles, args.windows, args.window_steps)
        rows.append(row)
        window = (f"{row['window_win_rate']:.3f} ± {row['window_standard_error']:.3f} "
                  f"({row['window_won']}/{row['window_battles_finished']})" if row["window_battles_finished"] else "-")
        print(f"| {row['run']} | {row['checkpoint_env_steps']:,} | {row['logged_final_win_rate']:.3f} "
              f"({row['logged_final_battles']}) | {row['whole_win_rate']:.3f} ± {row['whole_standard_error']:.3f} "
              f"({row['whole_won']}/{row['whole_battles']}, {row['whole_mean_length']:.1f}) | {window} |", flush=True)
    if args.out:
        command = ["python", "benchmarks/smax_test_protocols.py", *map(str, args.run_dirs), "--battles", str(args.battles),
                   "--windows", str(args.windows), "--window-steps", str(args.window_steps), "--seed", str(args.seed)]
        write_json_atomic(args.out, {"command": " ".join(command), "git": git_provenance(), "rows": rows})


if __name__ == "__main__":
    main()
