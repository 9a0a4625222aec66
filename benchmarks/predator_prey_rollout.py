"""Raw rollout speed of the predator-prey env (the paper's default config).

Random available actions, `jax.vmap` over E environments, `jax.lax.scan` over 1000 steps with
auto-reset (an episode that terminates or is truncated is reset inside the scan), all under one
`jax.jit`. Compilation is excluded (a first call compiles; the timed calls reuse it). Prints env
steps per second (E * steps / seconds) for E = 1, 16, 128.

    python benchmarks/predator_prey_rollout.py [--steps 1000] [--repeats 3] [--envs 1 16 128]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from wqmix.envs.configs import PredatorPreyConfig


def make_rollout(env, num_envs: int, num_steps: int):
    def one_env_step(carry, key):
        state, ts = carry
        action_key, step_key, reset_key = jax.random.split(key, 3)
        logits = jnp.where(ts.avail, 0.0, -jnp.inf)
        actions = jax.random.categorical(action_key, logits).astype(jnp.int32)
        state, ts = env.step(step_key, state, actions)
        done = ts.terminated | ts.truncated
        reset_state, reset_ts = env.reset(reset_key)
        state, next_ts = jax.tree.map(lambda r, s: jnp.where(done, r, s), (reset_state, reset_ts), (state, ts))
        return (state, next_ts), (ts.reward, done)

    def rollout(key):
        keys = jax.random.split(key, num_envs)
        carry = jax.vmap(env.reset)(keys)

        def body(carry, key):
            return jax.vmap(one_env_step)(carry, jax.random.split(key, num_envs))

        carry, (rewards, dones) = jax.lax.scan(body, carry, jax.random.split(key, num_steps))
        return rewards.sum(), dones.sum()

    return jax.jit(rollout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 16, 128])
    args = parser.parse_args()
    env = PredatorPreyConfig().make()
    print(f"device: {jax.devices()[0]}, {args.steps} steps per rollout, best of {args.repeats}")
    for num_envs in args.envs:
        rollout = make_rollout(env, num_envs, args.steps)
        jax.block_until_ready(rollout(jax.random.key(0)))  # compile
        best = float("inf")
        for r in range(args.repeats):
            start = time.perf_counter()
            total_reward, episodes = jax.block_until_ready(rollout(jax.random.key(r + 1)))
            best = min(best, time.perf_counter() - start)
        rate = num_envs * args.steps / best
        print(f"E = {num_envs:4d}: {rate:12,.0f} env steps/s  ({best:.3f} s; {int(episodes)} episodes ended)")


if __name__ == "__main__":
    main()
