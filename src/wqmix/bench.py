"""`wqmix bench`: fixed workloads timed the same way every time.

Each workload runs in a fresh subprocess (so its peak RSS is its own): build the trainer, compile
the training chunk ahead of time (compile seconds), train until learning has started (excluded),
then time `repeats` chunks of `measure_env_steps` each: steady env steps/s (min / median / max
over the repeats, all seeds together), gradient updates/s, and the update's achieved GFLOP/s
(XLA's cost analysis of one update times updates/s). Peak RSS and replay-buffer bytes are
reported too. Compare figures measured one right after the other on the same machine only.
The options are read by `wqmix.cli.bench` (`wqmix bench --help`); `run_bench` does the work.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from wqmix import config as cfg
from wqmix.memory import release_freed_memory


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    make_config: Callable[[str], cfg.Config]
    measure_env_steps: int
    """Env steps (per seed) timed in each repeat."""
    host: bool = False
    """The env steps in Python (PettingZoo): timed by `run_host_workload`."""
    raw: bool = False
    """A compiled env whose adapter has `raw_random_policy`: acting alone and the env alone
    (a jitted, vmapped random-action rollout) are timed too, in the same run."""


def _with(config: cfg.Config, **sections: dict[str, Any]) -> cfg.Config:
    return dataclasses.replace(config, **{name: dataclasses.replace(getattr(config, name), **values)
                                          for name, values in sections.items()})


def _smax_network_sizes() -> dict[str, int]:
    """JaxMARL's ql_rnn_smax sizes (hidden 512, mixer 64, hypernet 256) where a GPU is present;
    pymarl's (64 / 32 / 64) on CPU, where the config's sizes take minutes per rollout."""
    import jax

    if jax.default_backend() == "gpu":
        return {"agent_hidden": 512, "mixer_embed": 64, "hypernet_embed": 256}
    return {"agent_hidden": 64, "mixer_embed": 32, "hypernet_embed": 64}


def _algo(config: cfg.Config, algo: str) -> cfg.Config:
    return cfg.with_algo(config, algo)


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("matrix-game", "paper protocol: 1 env, one update of 32 one-step episodes per episode",
             lambda a: _algo(cfg.preset("matrix-game-paper"), a), 2000),
    Workload("predator-prey-paper", "8 agents, 1 env, one update on 32 episodes after each episode, replay 5000",
             lambda a: _algo(cfg.preset("predator-prey-paper"), a), 2000),
    Workload("predator-prey-fast", "8 parallel envs, one update per 8 episodes (pymarl2 parallel runner)",
             lambda a: _algo(cfg.preset("predator-prey-fast"), a), 16000),
    Workload("seeds-16", "predator-prey-paper with 16 seeds vmapped in one process",
             lambda a: dataclasses.replace(_algo(cfg.preset("predator-prey-paper"), a), num_seeds=16), 400),
    Workload("mpe-spread-jaxmarl", "JaxMARL ql_rnn_mpe schedule: 8 envs per rollout, one update of 32 "
             "episodes per rollout, hidden 64, mixer 32, hypernet 128",
             lambda a: _with(_algo(cfg.official_defaults("mpe-spread"), a),
                             train={"num_envs": 8, "updates_per_iteration": 1},
                             network={"agent_hidden": 64, "mixer_embed": 32, "hypernet_embed": 128}), 40000),
    # JaxMARL does 8 gradient steps per 16 envs x 128 steps (auto-reset) = one per 256 env steps. Ours
    # collects whole battles: 3m battles last about 21 steps early in training (measured: 16 battles
    # = 337 steps per update), so one update per 12 battles keeps about JaxMARL's updates per env step.
    Workload("smax-3m-jaxmarl", "JaxMARL ql_rnn_smax schedule on 3m: about one update of 32 episodes per "
             "256 env steps (1 per 12 battles), hidden 64 / mixer 32 / hypernet 64 (GPU: 512 / 64 / 256)",
             lambda a: _with(_algo(cfg.official_defaults("smax"), a),
                             train={"num_envs": 12, "updates_per_iteration": 1},
                             network=_smax_network_sizes()), 12000),
    # JaxMARL's own collection: 16 envs x 128 steps of an auto-reset stream, 8 updates of 32
    # windows each per rollout (one update per 256 env steps), replay 5000 windows.
    Workload("smax-3m-jaxmarl-stream", "smax-3m-jaxmarl collected as JaxMARL does: windows of 128 steps of an "
             "auto-reset stream from 16 envs, 8 updates of 32 windows per rollout (train.collector stream)",
             lambda a: _with(_algo(cfg.official_defaults("smax"), a),
                             train={"num_envs": 16, "updates_per_iteration": 8, "collector": "stream",
                                    "stream_window": 128, "packed_rows": ()},
                             network=_smax_network_sizes()), 12000),
    Workload("seeds-16-mpe", "mpe-spread-jaxmarl with 16 seeds vmapped in one process",
             lambda a: dataclasses.replace(WORKLOADS["mpe-spread-jaxmarl"].make_config(a), num_seeds=16), 8000),
    Workload("seeds-16-matrix", "matrix-game with 16 seeds vmapped in one process (small updates: 28 MFLOP "
             "for QMIX)",
             lambda a: dataclasses.replace(_algo(cfg.preset("matrix-game-paper"), a), num_seeds=16), 2000),
    Workload("seeds-16-smax", "smax-3m-jaxmarl with 16 seeds vmapped in one process",
             lambda a: dataclasses.replace(WORKLOADS["smax-3m-jaxmarl"].make_config(a), num_seeds=16), 3000),
    # Overcooked's episodes (401 steps x 2 x 520 floats, a state twice that) take 3.3 MB each: 500 of
    # them (1.7 GB) instead of the default 5000 (16.7 GB).
    Workload("jaxmarl-overcooked", "jaxmarl Overcooked (cramped room, 2 agents, 400 steps) through --env jaxmarl, "
             "8 envs per rollout, one update of 32 episodes per rollout, replay 500 episodes; also acting alone "
             "and the env alone",
             lambda a: _with(_algo(cfg.official_defaults("jaxmarl"), a), env={"id": "overcooked"},
                             train={"num_envs": 8, "updates_per_iteration": 1, "buffer_size": 500}), 6400, raw=True),
    Workload("jumanji-lbf", "Jumanji LevelBasedForaging-v0 (8x8, 2 agents, 2 foods, 100 steps) through --env jumanji, "
             "8 envs per rollout, one update of 32 episodes per rollout; also acting alone and the env alone",
             lambda a: _with(_algo(cfg.official_defaults("jumanji"), a),
                             train={"num_envs": 8, "updates_per_iteration": 1}), 8000, raw=True),
    Workload("pettingzoo-spread", "mpe2 simple_spread (3 agents, 25 steps) through the PettingZoo adapter, "
             "8 envs side by side, one update of 32 episodes per 8 episodes; also its raw random-policy rate "
             "and acting alone",
             lambda a: _with(_algo(cfg.env_default("pettingzoo"), a), train={"num_envs": 8}), 4000, host=True),
    Workload("gym-lbf", "lbforaging Foraging-8x8-2p-3f-v3 (2 agents, 50 steps) through --env gym, 8 envs side by "
             "side, one update of 32 episodes per 8 episodes; also its raw random-policy rate and acting alone",
             lambda a: _with(_algo(cfg.official_defaults("gym"), a), train={"num_envs": 8}), 4000, host=True),
    Workload("pettingzoo-spread-workers", "pettingzoo-spread with its 8 envs stepped in 2 worker processes "
             "(train.env_workers 2)",
             lambda a: _with(_algo(cfg.env_default("pettingzoo"), a), train={"num_envs": 8, "env_workers": 2}),
             4000, host=True),
)}


def run_workload(name: str, algo: str, repeats: int) -> dict[str, Any]:
    """Time one workload in this process; returns its figures."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from wqmix.train import Trainer, seed_keys

    workload = WORKLOADS[name]
    if workload.host:
        return run_host_workload(workload, algo, repeats)
    config = cfg.validate(workload.make_config(algo))
    trainer = Trainer(config)
    num_seeds = config.num_seeds
    states = jax.jit(jax.vmap(trainer.init))(seed_keys(config.seed, num_seeds))
    chunk = jax.jit(trainer.run_chunk_seeds, donate_argnums=0)
    t = time.perf_counter()
    compiled = chunk.lower(states, jnp.int32(1)).compile()
    compile_s = time.perf_counter() - t
    release_freed_memory()  # as `wqmix train` does: peak RSS is what a user's run takes

    # Warm up until every seed learns in each iteration (the buffer holds a batch).
    episodes_needed = config.train.batch_size
    warm_steps = episodes_needed * trainer.spec.time_limit
    states, _ = compiled(states, jnp.int32(warm_steps))
    jax.block_until_ready(states)
    assert int(np.min(np.asarray(states.buffer.size))) >= config.train.batch_size

    rates, update_rates = [], []
    timed_acting = acting_and_raw(trainer, states, config) if workload.raw else None
    raw, acting, state_only, floor = [], [], [], []
    for _ in range(repeats):
        if timed_acting is not None:
            acting_rate, raw_rate, state_only_rate, floor_rate = timed_acting(workload.measure_env_steps)
            acting.append(acting_rate)
            raw.append(raw_rate)
            state_only.append(state_only_rate)
            floor.append(floor_rate)
        states = _timed_chunk(lambda states, stop: compiled(states, jnp.int32(stop)), states,
                              workload.measure_env_steps, rates, update_rates)
    figures = _figures(workload, algo, config, trainer, states, compile_s, rates, update_rates)
    if not raw:
        return figures
    import numpy as np

    network_flops = acting_network_flops(trainer, states, config.train.num_envs) / config.train.num_envs
    return {**figures, **_beside_raw(figures, raw, acting),
            "raw_state_only_env_steps_per_s": round(float(np.median(state_only)), 1),
            "env_and_network_env_steps_per_s": round(float(np.median(floor)), 1),
            "acting_network_mflop_per_env_step": round(network_flops / 1e6, 4)}


def _beside_raw(figures: dict[str, Any], raw: list[float], acting: list[float]) -> dict[str, Any]:
    """The env's own rate, acting's and training's, and their ratios (medians of the repeats)."""
    import numpy as np

    raw_rate, acting_rate = float(np.median(raw)), float(np.median(acting))
    return {"raw_env_steps_per_s": round(raw_rate, 1), "acting_env_steps_per_s": round(acting_rate, 1),
            "acting_vs_raw": round(acting_rate / raw_rate, 3),
            "training_vs_raw": round(figures["env_steps_per_s"]["median"] / raw_rate, 3)}


def output_checksum(tree: Any) -> Any:
    """The sum of every array in `tree` as float32, (): what a rollout that reads the env's
    outputs keeps of them, so that XLA cannot drop their computation (a jitted scan whose
    observations nobody reads never computes them)."""
    import jax
    import jax.numpy as jnp

    return sum((jnp.sum(jnp.asarray(x, jnp.float32)) for x in jax.tree_util.tree_leaves(tree)), jnp.float32(0))


def acting_network_flops(trainer: Any, states: Any, num_envs: int) -> float:
    """Matrix-product FLOPs (`matmul_flops`) of one acting step of the agent network over
    `num_envs` envs (every agent's utilities), from seed 0's parameters in `states`."""
    import jax
    import jax.numpy as jnp

    spec = trainer.spec
    params = jax.tree_util.tree_map(lambda x: x[0], states.learner.params["agent"])
    hidden = jnp.zeros((num_envs, spec.num_agents, trainer.networks.agent.hidden))
    obs = jnp.zeros((num_envs, spec.num_agents, spec.obs_dim))
    prev_actions = jnp.zeros((num_envs, spec.num_agents), jnp.int32)
    return matmul_flops(jax.make_jaxpr(trainer.utilities)(params, hidden, obs, prev_actions).jaxpr)


def acting_and_raw(trainer: Any, states: Any, config: cfg.Config) -> Callable[[int], tuple[float, ...]]:
    """A function of `env_steps` that times, one right after the other:
    - acting alone: the compiled rollout of `train.num_envs` envs, epsilon-greedy on the agent
      network of seed 0, no learning;
    - the env alone (`raw_random_policy`): the same number of envs, vmapped, stepped
      `time_limit` steps in a jitted scan with random actions, their observations, rewards and
      dones summed into a checksum (`output_checksum`) as a rollout reads them;
    - the same with only the env's state carried: XLA then drops the observations (an upper
      bound on the env's rate that no policy can see);
    - the env with the agent network in a plain scan (the env, the network and epsilon-greedy,
      nothing recorded): the floor of acting for an env cheaper than the network.
    Returns their env steps/s, in that order. All are compiled before the first timing."""
    import jax
    import jax.numpy as jnp

    from wqmix import action

    num_envs, horizon = config.train.num_envs, trainer.spec.time_limit
    params = jax.tree_util.tree_map(lambda x: x[0], states.learner.params["agent"])
    epsilon = jnp.float32(config.exploration.epsilon_finish)
    acting = jax.jit(lambda key: trainer.rollout(key, params, epsilon, num_envs)[1].episode_length.sum())
    reset, step = trainer.env.raw_random_policy()

    def env_alone(keep_outputs: bool) -> Callable:
        @jax.jit
        def run(key: jax.Array) -> Any:
            reset_key, key = jax.random.split(key)
            env_states = jax.vmap(reset)(jax.random.split(reset_key, num_envs))

            def body(carry, step_key):
                env_states, checksum = carry
                env_states, outputs = jax.vmap(step)(jax.random.split(step_key, num_envs), env_states)
                return (env_states, checksum + output_checksum(outputs) if keep_outputs else checksum), None

            return jax.lax.scan(body, (env_states, jnp.float32(0)), jax.random.split(key, horizon))[0]
        return run

    with_outputs, state_only = env_alone(True), env_alone(False)

    @jax.jit
    def env_and_network(key: jax.Array) -> Any:
        env, spec = trainer.env, trainer.spec
        reset_key, key = jax.random.split(key)
        env_states, timestep = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
        hidden = jnp.zeros((num_envs, spec.num_agents, trainer.networks.agent.hidden))
        prev_actions = jnp.full((num_envs, spec.num_agents), -1, jnp.int32)

        def body(carry, step_key):
            env_states, timestep, hidden, prev_actions = carry
            act_key, env_key = jax.random.split(step_key)
            hidden, q = trainer.utilities(params, hidden, timestep.obs, prev_actions)
            actions = action.masked_epsilon_greedy(act_key, q, timestep.avail, epsilon)
            env_states, timestep = jax.vmap(env.step)(jax.random.split(env_key, num_envs), env_states, actions)
            return (env_states, timestep, hidden, actions), None

        return jax.lax.scan(body, (env_states, timestep, hidden, prev_actions), jax.random.split(key, horizon))[0]

    jax.block_until_ready((acting(jax.random.key(0)), with_outputs(jax.random.key(0)),
                           state_only(jax.random.key(0)), env_and_network(jax.random.key(0))))
    calls = {"count": 0}

    def scanned_rate(run: Callable, key: jax.Array, env_steps: int) -> float:
        steps, start = 0, time.perf_counter()
        while steps < env_steps:
            key, rollout_key = jax.random.split(key)
            jax.block_until_ready(run(rollout_key))
            steps += num_envs * horizon
        return steps / (time.perf_counter() - start)

    def rates(env_steps: int) -> tuple[float, ...]:
        calls["count"] += 1
        key = jax.random.key(calls["count"])
        steps, start = 0, time.perf_counter()
        while steps < env_steps:
            key, rollout_key = jax.random.split(key)
            steps += int(acting(rollout_key))
        acting_rate = steps / (time.perf_counter() - start)
        keys = jax.random.split(key, 3)
        return (acting_rate, scanned_rate(with_outputs, keys[0], env_steps),
                scanned_rate(state_only, keys[1], env_steps), scanned_rate(env_and_network, keys[2], env_steps))

    return rates


def _timed_chunk(run_chunk: Callable, states: Any, env_steps: int, rates: list[float],
                 update_rates: list[float]) -> Any:
    """Run one chunk of `env_steps` more env steps (all seeds) and append its env steps/s and
    updates/s (all seeds together) to `rates` and `update_rates`. Returns the new states."""
    import jax
    import numpy as np

    start_steps, start_updates = np.asarray(states.env_steps).copy(), np.asarray(states.updates).copy()
    t = time.perf_counter()
    states, _ = run_chunk(states, int(np.max(start_steps)) + env_steps)
    jax.block_until_ready(states)
    seconds = time.perf_counter() - t
    rates.append(float(np.sum(np.asarray(states.env_steps) - start_steps)) / seconds)
    update_rates.append(float(np.sum(np.asarray(states.updates) - start_updates)) / seconds)
    return states


def _figures(workload: Workload, algo: str, config: cfg.Config, trainer: Any, states: Any, compile_s: float,
             rates: list[float], update_rates: list[float]) -> dict[str, Any]:
    """The figures every workload reports, from its timed repeats and final states; the
    update's achieved GFLOP/s is its matrix-product FLOPs x the measured updates/s."""
    import jax
    import numpy as np

    from wqmix.buffer import buffer_bytes

    first_seed = jax.tree_util.tree_map(lambda x: x[0], states)
    flops = update_matmul_flops(trainer, first_seed)
    median, median_updates = float(np.median(rates)), float(np.median(update_rates))
    return {
        "workload": workload.name, "algo": algo, "description": workload.description, "seeds": config.num_seeds,
        "compile_s": round(compile_s, 2),
        "env_steps_per_s": {"min": round(min(rates), 1), "median": round(median, 1), "max": round(max(rates), 1)},
        "updates_per_s": round(median_updates, 2),
        "env_steps_per_update": round(median / median_updates, 1) if median_updates else None,
        "update_gflop": round(flops / 1e9, 3),
        "update_gflops_per_s": round(flops * median_updates / 1e9, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "buffer_gb": round(buffer_bytes(states.buffer) / 1e9, 3),
        "repeats": len(rates),
        "backend": jax.default_backend(),
    }


def raw_env_steps_per_s(env: Any, num_steps: int, seed: int = 0) -> float:
    """A PettingZoo `ParallelEnv`, or a Gymnasium env with `Tuple` spaces, stepped in plain Python
    under a uniformly random policy (`action_space.sample()`, masks ignored), resetting when the
    episode ends: the env's own rate, which nothing built on it can beat."""
    import numpy as np

    steps, episode = 0, 0
    start = time.perf_counter()
    while steps < num_steps:
        env.reset(seed=seed + episode)
        episode += 1
        if hasattr(env, "possible_agents"):  # PettingZoo: agents leave the list when done
            while env.agents and steps < num_steps:
                env.step({agent: env.action_space(agent).sample() for agent in env.agents})
                steps += 1
            continue
        over = False
        while not over and steps < num_steps:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            over = bool(np.all(terminated)) or bool(np.any(truncated))
            steps += 1
    return steps / (time.perf_counter() - start)


def run_host_workload(workload: Workload, algo: str, repeats: int) -> dict[str, Any]:
    """Time a host-stepped (PettingZoo, Gymnasium) workload in this process, each repeat one right after the
    other: the env's raw random-policy rate (`raw_env_steps_per_s`, on its own env object),
    acting alone (`HostRunner.rollout`: epsilon-greedy on the agent network, every env of the
    step in one compiled call, no learning), and training (`HostRunner.run_chunk`: acting,
    replay and the update, after learning has started)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from wqmix.host_rollout import HostRunner
    from wqmix.train import Trainer, seed_keys

    config = cfg.validate(workload.make_config(algo))
    trainer = Trainer(config)
    runner = HostRunner(trainer, config.env.make, config.num_seeds)
    raw_env = config.env.make().env  # a separate copy of the PettingZoo or Gymnasium env, unwrapped
    states = jax.jit(jax.vmap(trainer.init))(seed_keys(config.seed, config.num_seeds))
    t = time.perf_counter()
    runner.warm_up(states)
    compile_s = time.perf_counter() - t
    release_freed_memory()
    # Fill the buffer until learning starts (excluded from the timings).
    states, _ = runner.run_chunk(states, jnp.int32(config.train.batch_size * trainer.spec.time_limit))
    jax.block_until_ready(states)
    assert int(np.min(np.asarray(states.buffer.size))) >= config.train.batch_size

    raw, acting, rates, update_rates = [], [], [], []
    epsilon = jnp.full((config.num_seeds,), config.exploration.epsilon_finish, jnp.float32)
    for r in range(repeats):
        raw.append(raw_env_steps_per_s(raw_env, workload.measure_env_steps, seed=r * 1000))
        steps, key = 0, jax.random.key(r)
        start = time.perf_counter()
        while steps < workload.measure_env_steps:
            key, rollout_key = jax.random.split(key)
            _, stats = runner.rollout(states.learner.params["agent"], jax.random.split(rollout_key, config.num_seeds),
                                      epsilon)
            steps += int(np.sum(np.asarray(stats.episode_length)))
        acting.append(steps / (time.perf_counter() - start))
        states = _timed_chunk(lambda states, stop: runner.run_chunk(states, jnp.int32(stop)), states,
                              workload.measure_env_steps, rates, update_rates)
    runner.close()

    figures = _figures(workload, algo, config, trainer, states, compile_s, rates, update_rates)
    return {**figures, **_beside_raw(figures, raw, acting)}


def update_matmul_flops(trainer: Any, state: Any) -> float:
    """Matrix-product FLOPs (`matmul_flops`) of one update of `trainer` on a batch sampled from
    the replay of `state` (one seed's `TrainState`)."""
    import jax

    from wqmix.buffer import sample

    batch = sample(state.buffer, jax.random.key(0), trainer.config.train.batch_size)
    return matmul_flops(jax.make_jaxpr(trainer._update)(state.learner, batch).jaxpr)


def matmul_flops(jaxpr) -> float:
    """FLOPs of the matrix products in a jaxpr (2 x m x n x k each), a `scan` body counted as many
    times as the scan runs (a `while_loop`, whose trip count is unknown here, once; the update
    has none). XLA's own cost analysis counts every loop body once, which misses almost all of a
    recurrent update; elementwise work is left out (it is memory-bound)."""
    import numpy as np
    from jax.extend.core import ClosedJaxpr, Jaxpr

    total = 0.0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (contracting, _), _ = eqn.params["dimension_numbers"]  # lhs contracting dims
            lhs = eqn.invars[0].aval.shape
            out = eqn.outvars[0].aval.shape
            total += 2.0 * float(np.prod(out)) * float(np.prod([lhs[d] for d in contracting]))
            continue
        times = float(eqn.params["length"]) if eqn.primitive.name == "scan" else 1.0
        inner = []
        for value in eqn.params.values():
            for item in (value if isinstance(value, (tuple, list)) else (value,)):
                if isinstance(item, ClosedJaxpr):
                    inner.append(matmul_flops(item.jaxpr))
                elif isinstance(item, Jaxpr):
                    inner.append(matmul_flops(item))
        if inner:  # a cond runs one branch: count the dearest
            total += times * (max(inner) if eqn.primitive.name == "cond" else sum(inner))
    return total


def matmul_gflops() -> float:
    """This machine's dense float32 matmul rate (2048 x 2048), the physical limit here."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((2048, 2048), jnp.float32)
    f = jax.jit(lambda a: jax.lax.fori_loop(0, 10, lambda i, x: (x @ a) * 1e-3, a))
    jax.block_until_ready(f(a))
    t = time.perf_counter()
    jax.block_until_ready(f(a))
    return 10 * 2 * 2048**3 / (time.perf_counter() - t) / 1e9


def main(argv: list[str]) -> int:
    """`python -m wqmix.bench ARGV...`; returns the exit status. `--one NAME ALGO REPEATS` (internal,
    what `run_bench` starts) times one workload in this (fresh) process and prints its figures as
    JSON; any other ARGV runs `wqmix bench ARGV...` as a program of its own (the CLI is a layer above
    this module, which does not import it)."""
    if argv and argv[0] == "--one":
        print(json.dumps(run_workload(argv[1], argv[2], int(argv[3]))))
        return 0
    return subprocess.call([sys.executable, "-m", "wqmix.cli", "bench", *argv])


def run_bench(workloads: list[str], algos: list[str], repeats: int, json_path: str | None = None,
              quiet: bool = False) -> int:
    """Time every workload x algorithm, each in a fresh subprocess, and print the table (and
    write the figures to `json_path`). Returns the exit status."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = Console(stderr=True, quiet=quiet)
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, disable=quiet) as progress:
        task = progress.add_task("bench", total=len(workloads) * len(algos) + 1)
        progress.update(task, description="dense matmul")
        limit = matmul_gflops()
        progress.advance(task)
        # Compile seconds are measured: no persistent XLA cache may answer them.
        uncached = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
        for name in workloads:
            for algo in algos:
                progress.update(task, description=f"{name} / {algo}")
                done = subprocess.run([sys.executable, "-m", "wqmix.bench", "--one", name, algo, str(repeats)],
                                      capture_output=True, text=True, env=uncached)
                if done.returncode != 0:
                    console.print(f"[red]{name} / {algo} failed[/]: {done.stderr.strip().splitlines()[-1:]}")
                else:
                    results.append(json.loads(done.stdout.strip().splitlines()[-1]))
                progress.advance(task)
    from wqmix.run_dir import device_description

    table = Table(title=f"wqmix bench on {device_description()} (dense matmul limit here: {limit:.0f} GFLOP/s)")
    for column in ("workload", "algo", "seeds", "compile s", "env steps/s (min/median/max)", "updates/s",
                   "update GFLOP/s", "peak RSS GB", "buffer GB"):
        table.add_column(column, justify="right")
    for r in results:
        s = r["env_steps_per_s"]
        table.add_row(r["workload"], r["algo"], str(r["seeds"]), f"{r['compile_s']:.1f}",
                      f"{s['min']:,.0f} / {s['median']:,.0f} / {s['max']:,.0f}", f"{r['updates_per_s']:.2f}",
                      f"{r['update_gflops_per_s']:.1f}", f"{r['peak_rss_gb']:.2f}", f"{r['buffer_gb']:.3f}")
    Console().print(table)
    for r in results:  # the env's own rate beside ours (host-stepped and `raw` workloads), on one line
        if "raw_env_steps_per_s" in r:
            floor = r.get("env_and_network_env_steps_per_s")
            floor = f"; the env with the agent network in a plain scan {floor:,.0f}" if floor else ""
            if "raw_state_only_env_steps_per_s" in r:
                floor += (f"; the env alone with its state only (observations dropped by XLA) "
                          f"{r['raw_state_only_env_steps_per_s']:,.0f}; the agent network "
                          f"{r['acting_network_mflop_per_env_step']:.3f} MFLOP per env step")
            Console().print(f"{r['workload']} / {r['algo']}: env alone (random policy) "
                            f"{r['raw_env_steps_per_s']:,.0f} env steps/s; acting {r['acting_env_steps_per_s']:,.0f} "
                            f"({r['acting_vs_raw']:.0%} of the env alone){floor}; training "
                            f"{r['env_steps_per_s']['median']:,.0f} ({r['training_vs_raw']:.0%})")
    if json_path:
        from wqmix.run_dir import write_json_atomic

        write_json_atomic(json_path, {"device": device_description(), "matmul_gflops": round(limit, 1),
                                      "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
