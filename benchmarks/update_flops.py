"""Matrix-product GFLOP of one gradient update, per algorithm, on a preset's workload.

Counts the update's matrix products from its jaxpr (`wqmix.bench.update_matmul_flops`: 2 x m x n x k
each, a scan's body as many times as it runs), on a batch of `train.batch_size` episodes padded
to the env's time limit, as `wqmix bench` reports `update_gflop`. Nothing is timed, so it may
run beside other work. Prints one line per algorithm, with the parameter count of each network.

    python benchmarks/update_flops.py --preset lbf-epymarl --algo qmix --algo ow-qmix
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from wqmix.bench import update_matmul_flops
from wqmix.config.resolve import resolve_config
from wqmix.train import Trainer


def update_gflop(preset: str, algo: str) -> tuple[float, dict[str, int]]:
    """(GFLOP of one update, parameters per network) of `algo` under `preset`."""
    config = resolve_config(preset=preset, algo=algo)
    trainer = Trainer(config)
    state = trainer.init(jax.random.key(config.seed))
    flops = update_matmul_flops(trainer, state)
    sizes = {name: int(sum(np.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params)))
             for name, params in state.learner.params.items()}
    return flops / 1e9, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--algo", action="append", required=True)
    args = parser.parse_args()
    for algo in args.algo:
        gflop, sizes = update_gflop(args.preset, algo)
        networks = ", ".join(f"{name} {count:,}" for name, count in sizes.items())
        print(f"{args.preset} / {algo}: {gflop:.2f} GFLOP per update; parameters: {networks}")


if __name__ == "__main__":
    main()
