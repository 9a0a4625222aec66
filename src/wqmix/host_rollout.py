"""The host-stepped rollout for PettingZoo envs: `HostRunner` (rollouts, training chunks, greedy episodes).

The env steps in Python; acting and the whole update (`Trainer.absorb`) stay compiled. Seeds run
side by side: each seed has its own `num_envs` environments, and acting and learning are vmapped
over seeds as in compiled runs."""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from wqmix import action
from wqmix.buffer import Episodes
from wqmix.env_pool import LocalEnvs, WorkerEnvs
from wqmix.envs.base import HostEnvironment
from wqmix.train import SEED_AXIS, ChunkMetrics, RolloutStats, Trainer, TrainState, min_env_steps


def _as_episodes(obs, state, avail, alive, actions, reward, terminated, filled, won) -> tuple[Episodes, RolloutStats]:
    """A rollout's host arrays (leading axes seeds, envs) as the compiled update takes them."""
    episodes = Episodes(obs=jnp.asarray(obs), state=jnp.asarray(state), avail=jnp.asarray(avail),
                        actions=jnp.asarray(actions), reward=jnp.asarray(reward),
                        terminated=jnp.asarray(terminated), filled=jnp.asarray(filled), alive=jnp.asarray(alive))
    stats = RolloutStats(episode_return=jnp.asarray(reward.sum(axis=-1)),
                         episode_length=jnp.asarray(filled.sum(axis=-1), jnp.int32),
                         episode_won=jnp.asarray(won))
    return episodes, stats


class HostRunner:
    """Rollouts and chunks for `num_seeds` x `num_envs` host environments: in this process, or in
    `train.env_workers` worker processes (`wqmix.env_pool`). Call `close` when done."""

    def __init__(self, trainer: Trainer, make_env: Callable[[], HostEnvironment], num_seeds: int):
        self.trainer, self.num_seeds = trainer, num_seeds
        self.num_envs = trainer.config.train.num_envs
        count, workers = num_seeds * self.num_envs, trainer.config.train.env_workers
        # env k * num_envs + e is env e of seed k
        if workers:
            self.envs = WorkerEnvs(make_env, count, workers)
        else:
            self.envs = LocalEnvs([trainer.env] + [make_env() for _ in range(count - 1)])

        def act(agent_params, hidden, obs, prev_actions, avail, key, t, epsilon):
            # one seed: hidden (E, agents, H), obs (E, agents, obs), avail (E, agents, actions);
            # step t's key folded in here, so that one compiled call is all a step costs
            hidden, q = trainer.utilities(agent_params, hidden, obs, prev_actions)
            return hidden, action.masked_epsilon_greedy(jax.random.fold_in(key, t), q, avail, epsilon)

        self._act = jax.jit(jax.vmap(act, in_axes=(0, 0, 0, 0, 0, 0, None, 0)))
        self._absorb = jax.jit(jax.vmap(functools.partial(trainer.absorb, seed_axis=SEED_AXIS), axis_name=SEED_AXIS))
        self._split = jax.jit(jax.vmap(lambda k: tuple(jax.random.split(k))))
        self._epsilon = jax.jit(jax.vmap(trainer.epsilon))
        self._seeds = jax.jit(jax.vmap(lambda k: jax.random.randint(k, (self.num_envs,), 0, 2**31 - 1)))

    def close(self) -> None:
        """Stop the env worker processes, if any."""
        self.envs.close()

    def rollout(self, agent_params, keys: jax.Array, epsilon: jax.Array) -> tuple[Episodes, RolloutStats]:
        """One episode per environment and seed. Arrays have leading axes (seeds, envs)."""
        spec = self.trainer.spec
        K, E, T, n = self.num_seeds, self.num_envs, spec.time_limit, spec.num_agents
        N = K * E  # envs of all seeds, on one axis here
        reset_keys, act_keys = self._split(keys)
        seeds = np.asarray(self._seeds(reset_keys)).reshape(N)
        obs = np.zeros((N, T + 1, n, spec.obs_dim), np.float32)
        state = np.zeros((N, T + 1, spec.state_dim), np.float32)
        avail = np.zeros((N, T + 1, n, spec.num_actions), bool)
        alive = np.zeros((N, T + 1, n), bool)
        actions = np.zeros((N, T, n), np.int32)
        reward = np.zeros((N, T), np.float32)
        terminated = np.zeros((N, T), bool)
        filled = np.zeros((N, T), bool)
        won = np.zeros((N,), bool)
        current = self.envs.reset(seeds)  # each env's latest time step, (N, ...)
        done = np.zeros((N,), bool)
        hidden = jnp.zeros((K, E, n, self.trainer.networks.agent.hidden))
        prev_actions = jnp.full((K, E, n), -1, jnp.int32)
        for t in range(T + 1):
            obs[:, t], state[:, t], avail[:, t], alive[:, t] = current.obs, current.state, current.avail, current.alive
            if t == T or done.all():
                if t < T:  # the remaining steps are padding: repeat the last observation
                    obs[:, t + 1:] = obs[:, t:t + 1]
                    state[:, t + 1:] = state[:, t:t + 1]
                    avail[:, t + 1:] = avail[:, t:t + 1]
                    alive[:, t + 1:] = alive[:, t:t + 1]
                break
            hidden, chosen = self._act(agent_params, hidden, obs[:, t].reshape(K, E, n, -1), prev_actions,
                                       avail[:, t].reshape(K, E, n, -1), act_keys, np.int32(t), epsilon)
            prev_actions = chosen
            chosen = np.asarray(chosen).reshape(N, n)
            actions[:, t] = chosen
            which = np.flatnonzero(~done)
            stepped = self.envs.step(which, chosen[which])
            reward[which, t], terminated[which, t], filled[which, t] = stepped.reward, stepped.terminated, True
            won[which] |= stepped.won
            done[which] = stepped.terminated | stepped.truncated
            for name in ("obs", "state", "avail", "alive"):
                getattr(current, name)[which] = getattr(stepped, name)

        def seeds_envs(x):  # (N, ...) -> (K, E, ...)
            return x.reshape(K, E, *x.shape[1:])
        return _as_episodes(*map(seeds_envs, (obs, state, avail, alive, actions, reward, terminated, filled, won)))

    def warm_up(self, states: TrainState) -> None:
        """Compile acting and absorbing now, on inputs shaped and typed as a rollout's, instead of
        on their first calls inside training (so that a run's compile time is not counted as
        training time). Nothing is stepped and `states` is not changed."""
        spec = self.trainer.spec
        K, E, T, n = self.num_seeds, self.num_envs, spec.time_limit, spec.num_agents
        epsilon = self._epsilon(states.env_steps)
        _, act_keys = self._split(states.key)
        self._act(states.learner.params["agent"], jnp.zeros((K, E, n, self.trainer.networks.agent.hidden)),
                  np.zeros((K, E, n, spec.obs_dim), np.float32), jnp.full((K, E, n), -1, jnp.int32),
                  np.ones((K, E, n, spec.num_actions), bool), act_keys, np.int32(0), epsilon)
        episodes, stats = _as_episodes(
            np.zeros((K, E, T + 1, n, spec.obs_dim), np.float32), np.zeros((K, E, T + 1, spec.state_dim), np.float32),
            np.ones((K, E, T + 1, n, spec.num_actions), bool), np.ones((K, E, T + 1, n), bool),
            np.zeros((K, E, T, n), np.int32), np.zeros((K, E, T), np.float32), np.zeros((K, E, T), bool),
            np.ones((K, E, T), bool), np.zeros((K, E), bool))
        jax.block_until_ready(self._absorb(states, episodes, stats, epsilon, states.env_steps < jnp.int32(0)))

    def run_chunk(self, states: TrainState, stop_env_steps: jax.Array) -> tuple[TrainState, ChunkMetrics]:
        """Iterate (act on the host, absorb compiled) until every seed reached `stop_env_steps`."""
        totals = None
        while min_env_steps(states) < int(stop_env_steps):
            # A seed that reached the stop is held still until the others do (as `run_chunk_seeds`):
            # its key does not advance and `absorb` leaves its state as it is.
            active = states.env_steps < stop_env_steps
            keys, rollout_keys = self._split(states.key)
            states = states.replace(key=jnp.where(active, keys, states.key))
            epsilon = self._epsilon(states.env_steps)
            episodes, stats = self.rollout(states.learner.params["agent"], rollout_keys, epsilon)
            states, metrics = self._absorb(states, episodes, stats, epsilon, active)
            if totals is None:
                totals = metrics
            else:
                totals = jax.tree_util.tree_map(jnp.add, totals, metrics).replace(epsilon=metrics.epsilon)
        return states, totals

    def greedy_episodes(self, agent_params, key: jax.Array, num_episodes: int) -> RolloutStats:
        """`num_episodes` greedy test episodes per seed (in rounds of `num_envs`)."""
        rounds = -(-num_episodes // self.num_envs)
        collected = []
        for r in range(rounds):
            keys = jax.random.split(jax.random.fold_in(key, r), self.num_seeds)
            _, stats = self.rollout(agent_params, keys, jnp.zeros((self.num_seeds,), jnp.float32))
            collected.append(stats)
        return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=1)[:, :num_episodes], *collected)
