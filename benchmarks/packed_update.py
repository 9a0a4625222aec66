"""Gradient updates per second on a trained run's own replay, padded against packed batches.

`wqmix bench` times training from scratch, where predator-prey's random-policy episodes all
last the 200-step time limit and packing has nothing to remove. Late in training they are
much shorter (median 31 steps at 1M on p = -2, 12% still cut at 200), and that is where the
paper protocol's one update per episode spends most of a run's time. This script restores a
run's last checkpoint (its replay buffer and parameters), then times `--updates` updates of
the run's own algorithm on batches sampled from that replay, first padded (`train.packed_rows`
[]), then packed into each of `--rows`, one right after the other, and reports the ratio. It
also prints how many rows the sampled batches need (the packed update uses the first count of
`--rows` that holds each batch, else the padded one).

    python benchmarks/packed_update.py RUN_DIR [--rows 12 16 24] [--updates 100] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np

from wqmix import config as cfg
from wqmix.buffer import pack_layout, sample
from wqmix.checkpoint import Checkpointer
from wqmix.train import Trainer, seed_keys


def time_updates(trainer: Trainer, learner, buffer, num_updates: int) -> float:
    """Updates per second of `trainer._learn` run `num_updates` times (compile excluded)."""
    learn = jax.jit(lambda learner, buffer, key: trainer._learn(learner, buffer, key)[0])
    keys = jax.random.split(jax.random.key(1), num_updates + 1)
    jax.block_until_ready(learn(learner, buffer, keys[0]))  # compile
    start = time.perf_counter()
    for key in keys[1:]:
        learner = learn(learner, buffer, key)
    jax.block_until_ready(learner)
    return num_updates / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--rows", type=int, nargs="+", default=[12, 16, 24])
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    config = cfg.from_dict(json.loads((args.run_dir / "config.json").read_text()))
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, packed_rows=()))
    padded = Trainer(config)
    like = jax.vmap(padded.init)(seed_keys(config.seed, config.num_seeds))
    checkpointer = Checkpointer(args.run_dir, keep=10)
    step = checkpointer.latest_step()
    states, _ = checkpointer.restore(step, like)
    checkpointer.close()
    learner = jax.tree_util.tree_map(lambda x: x[0], states.learner)
    buffer = jax.tree_util.tree_map(lambda x: x[0], states.buffer)

    needed = np.array([int(pack_layout(sample(buffer, jax.random.key(k), config.train.batch_size).filled).rows_needed)
                       for k in range(500)])
    packed_config = dataclasses.replace(config, train=dataclasses.replace(config.train, packed_rows=tuple(args.rows)))
    padded_rate = time_updates(padded, learner, buffer, args.updates)
    packed_rate = time_updates(Trainer(packed_config), learner, buffer, args.updates)
    result = {
        "run_dir": str(args.run_dir), "checkpoint_env_steps": step, "algo": config.algo.name,
        "batch_size": config.train.batch_size, "time_limit": padded.spec.time_limit,
        "rows_needed": {"mean": round(float(needed.mean()), 2),
                        "percentiles_50_90_99": np.percentile(needed, [50, 90, 99]).tolist()},
        "packed_rows": list(args.rows), "updates_timed": args.updates,
        "padded_updates_per_s": round(padded_rate, 3), "packed_updates_per_s": round(packed_rate, 3),
        "speedup": round(packed_rate / padded_rate, 2), "backend": jax.default_backend(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        from wqmix.run_dir import write_json_atomic

        write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
