"""Our smax-3m-jaxmarl-stream iteration in its two parts, each timed alone: acting (16 envs x 128
steps of the auto-reset stream, epsilon 0.3) and learning (`Trainer._learn`: 8 updates of 32
windows of 128 steps, on a buffer filled by a few iterations). Set beside
`benchmarks/jaxmarl_smax_components.py`, which times JaxMARL's QMIX sample and learn phases on
the same shapes, run right after it: the two tell which part of an iteration differs.

    python benchmarks/smax_components.py [--algo qmix] [--reps 20]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from wqmix import config as cfg
from wqmix.bench import WORKLOADS
from wqmix.train import Trainer

from _timing import median_ms  # benchmarks/ is on the path of a script run from it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algo", default="qmix")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    config = cfg.validate(WORKLOADS["smax-3m-jaxmarl-stream"].make_config(args.algo))
    trainer = Trainer(config)
    state = jax.jit(trainer.init)(jax.random.key(0))
    # Three iterations of 16 windows each: the buffer then holds a batch of 32.
    state, _ = jax.jit(trainer.run_chunk, donate_argnums=0)(state, jnp.int32(3 * 16 * 128))
    params = state.learner.params["agent"]

    act = jax.jit(lambda key, stream: trainer.stream_rollout(key, params, jnp.float32(0.3), stream))
    act = act.lower(jax.random.key(0), state.stream).compile()
    keys = iter(jax.random.split(jax.random.key(1), args.reps + 3))
    act_ms = median_ms(lambda: act(next(keys), state.stream), args.reps)

    learn = jax.jit(trainer._learn).lower(state.learner, state.buffer, jax.random.key(2)).compile()
    keys = iter(jax.random.split(jax.random.key(3), args.reps + 3))
    learn_ms = median_ms(lambda: learn(state.learner, state.buffer, next(keys)), args.reps)
    print(f"wqmix {args.algo}: acting 2048 env steps {act_ms[0]:.1f} ms (min {act_ms[1]:.1f}); "
          f"8 updates {learn_ms[0]:.1f} ms (min {learn_ms[1]:.1f}); backend {jax.default_backend()}")


if __name__ == "__main__":
    main()
