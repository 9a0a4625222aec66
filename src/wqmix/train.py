"""Training compiled end to end: rollout, replay, update and target copies inside `jit`.

`make_train(config)` returns `train(key)`, which runs a whole training in one compiled call.
The command line uses the same `Trainer` in chunks (`run_chunk`), so the host can log and draw
the progress bar between compiled calls. `jax.vmap` over the keys trains many seeds at once.

One iteration: every one of the `num_envs` environments plays one episode (epsilon-greedy on
the online agent network); the episodes go into the replay buffer; once it holds `batch_size`
episodes, `updates_per_iteration` gradient updates each sample a batch; every
`target_update_interval` episodes the target networks become copies of the online ones.
With `train.collector` "stream" each env instead takes `stream_window` steps of an auto-reset
stream that carries on across iterations, and the replay stores these windows
(`Trainer.stream_rollout`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from wqmix import action, buffer as replay
from wqmix.agents import Networks, agent_inputs, init_params, make_networks, unroll_agents
from wqmix.buffer import Episodes, ReplayBuffer
from wqmix.config import Config, validate
from wqmix.envs.base import Environment, HostEnvironment, TimeStep
from wqmix.envs.check import check_env
from wqmix.errors import ConfigError
from wqmix.learner import (LearnerState, UpdateMetrics, copy_targets, init_learner, make_optimizer, make_update,
                           pieces_for, standardise_batch_rewards)


SEED_AXIS = "seeds"
"""The name of the vmap axis over seeds (`run_chunk_seeds`, host rollouts): the seeds of a packed
update agree on its row count over it."""


@struct.dataclass
class StreamState:
    """Where each env's auto-reset stream stands between iterations (`train.collector` "stream")."""

    env_state: Any  # the envs' states, each leaf (E, ...)
    timestep: TimeStep  # (E, ...): what the agents see now
    episode_return: jax.Array  # (E,) float32: return so far of each env's running episode


@struct.dataclass
class TrainState:
    """The whole training state of one seed, as one pytree."""

    learner: LearnerState
    buffer: ReplayBuffer
    key: jax.Array
    env_steps: jax.Array  # () int32
    episodes: jax.Array  # () int32: episodes finished
    last_target_update_episode: jax.Array  # () int32
    stream: StreamState | None = None  # collector "stream" only

    @property
    def updates(self) -> jax.Array:
        """() int32: gradient updates so far (the learner counts them)."""
        return self.learner.steps


@struct.dataclass
class RolloutStats:
    episode_return: jax.Array  # (E,) sum of rewards (stream: of the episodes that finished)
    episode_length: jax.Array  # (E,) steps taken
    episode_won: jax.Array  # (E,) bool: ended in a win (SMAX); stream: episodes won, int
    episodes_finished: jax.Array | None = None  # (E,) int: stream only (else one episode each)


@struct.dataclass
class ChunkMetrics:
    """Sums over the iterations of a chunk (the host divides)."""

    iterations: jax.Array
    episodes: jax.Array
    env_steps: jax.Array
    return_sum: jax.Array
    won_sum: jax.Array  # episodes won
    learn_iterations: jax.Array  # iterations that ran updates
    update: UpdateMetrics  # summed over learning iterations (each the mean of its updates)
    epsilon: jax.Array  # at the chunk's last iteration


def _alive(timestep) -> jax.Array:
    """(..., agents) bool: which agents take part; all of them when the env does not say."""
    if timestep.alive is not None:
        return timestep.alive
    return jnp.ones(timestep.avail.shape[:-1], bool)


def _zeros_like_tree(tree):
    return jax.tree_util.tree_map(jnp.zeros_like, tree)


def _per_env_where(mask: jax.Array, new, old):
    """Leaves of `new` for the envs where `mask` ((E,) bool) holds, else those of `old`."""
    return jax.tree_util.tree_map(lambda n, o: jnp.where(mask.reshape(-1, *([1] * (n.ndim - 1))), n, o), new, old)


def _with_last(xs: jax.Array, x: jax.Array) -> jax.Array:
    """Time-major records and the step after them, batch-major: (T, E, ...) + (E, ...) -> (E, T+1, ...)."""
    return jnp.swapaxes(jnp.concatenate([xs, x[None]], axis=0), 0, 1)


def _where_tree(keep_new: jax.Array, new, old):
    """Leaves of `new` where `keep_new` (a () bool), else those of `old`."""
    return jax.tree_util.tree_map(lambda n, o: jnp.where(keep_new, n, o), new, old)


class Trainer:
    """The compiled pieces of a training run for one validated config."""

    def __init__(self, config: Config, env: Environment | None = None):
        self.config = config = validate(config)
        self.env = env if env is not None else config.env.make()
        self.spec = self.env.spec
        self.networks: Networks = make_networks(config.algo, config.network, self.spec)
        self.optimizer = make_optimizer(config.optim, config.algo)
        self.pieces = pieces_for(config.algo, self.networks)
        self._update = make_update(config.algo, self.networks, self.optimizer, self.pieces)
        self.stream_window = config.train.stream_window if config.train.collector == "stream" else None
        """Env steps per window of the auto-reset stream, or None (whole episodes)."""
        if self.stream_window is not None and isinstance(self.env, HostEnvironment):
            raise ConfigError("train.collector", "stream", "needs a compiled (JAX) env; host-stepped envs "
                              "(PettingZoo) collect whole episodes: set it to 'episodes'")
        self.packed_rows = () if self.stream_window is not None else tuple(
            r for r in config.train.packed_rows if r < config.train.batch_size)
        """The row counts a packed update may use: those of `train.packed_rows` below the batch
        (none for stream windows, which are full)."""

    # ---- acting -------------------------------------------------------------------------

    def utilities(self, agent_params: Any, hidden: jax.Array, obs: jax.Array, prev_actions: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
        """One acting step of the shared agent network. hidden (E, agents, H), obs (E, agents,
        obs_dim), prev_actions (E, agents) int (-1 before the first step). Returns (hidden,
        q (E, agents, actions))."""
        inputs = agent_inputs(self.networks, obs, prev_actions)  # (E, agents, in)
        hidden, q = unroll_agents(self.networks.agent, agent_params, hidden, inputs[None])
        return hidden, q[0]

    def rollout(self, key: jax.Array, agent_params: Any, epsilon: jax.Array, num_envs: int,
                seed_axis: str | None = None) -> tuple[Episodes, RolloutStats]:
        """One episode in each of `num_envs` environments, padded to the time limit.

        Environments that finish early are frozen (their state stops changing) and their
        remaining steps are marked as padding (`filled` false). The loop stops as soon as every
        environment has finished (SMAX 3m battles last about 15-60 of their 100 steps): the padding
        rows then repeat each env's final observation, state and masks, with action 0, no
        reward and `filled` false, which leaves the loss unchanged.

        Under the seeds' vmap (`seed_axis`) the loop runs until every env of every seed has
        finished: a per-seed stop would make JAX select the whole loop state, the (T, E, ...)
        records included, between old and new on every step, and write each step's row with a
        scatter. A seed that finished first records padding rows (equal to the ones above) until
        the others do, so each seed's episodes are those of its own run."""
        env, spec, networks = self.env, self.spec, self.networks
        T = spec.time_limit
        reset_key, key = jax.random.split(key)
        env_state, timestep = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
        hidden = jnp.zeros((num_envs, spec.num_agents, networks.agent.hidden))
        prev_actions = jnp.full((num_envs, spec.num_agents), -1, jnp.int32)
        done = jnp.zeros((num_envs,), bool)
        step_keys = jax.random.split(key, T)

        def step(env_state, timestep, hidden, prev_actions, done, step_key):
            act_key, env_key = jax.random.split(step_key)
            hidden, q = self.utilities(agent_params, hidden, timestep.obs, prev_actions)
            actions = action.masked_epsilon_greedy(act_key, q, timestep.avail, epsilon)  # (E, agents)
            next_env_state, next_timestep = jax.vmap(env.step)(
                jax.random.split(env_key, num_envs), env_state, actions)
            active = ~done
            record = (timestep.obs, timestep.state, timestep.avail, _alive(timestep),
                      jnp.where(active[:, None], actions, 0),  # padding rows: action 0
                      jnp.where(active, next_timestep.reward, 0.0), next_timestep.terminated & active, active,
                      next_timestep.won & active)
            done = done | next_timestep.terminated | next_timestep.truncated
            carry = (_per_env_where(active, next_env_state, env_state), _per_env_where(active, next_timestep, timestep),
                     hidden, actions, done)
            return carry, record

        start = (env_state, timestep, hidden, prev_actions, done)
        record_shapes = jax.eval_shape(step, *start, step_keys[0])[1]
        empty = jax.tree_util.tree_map(lambda r: jnp.zeros((T, *r.shape), r.dtype), record_shapes)

        def body(loop):
            t, carry, records = loop
            carry, record = step(*carry, step_keys[t])
            records = jax.tree_util.tree_map(lambda rs, r: rs.at[t].set(r), records, record)
            return t + 1, carry, records

        def running(loop):
            t, carry, _ = loop
            going = ~jnp.all(carry[-1])
            if seed_axis is not None:
                going = jax.lax.pmax(going.astype(jnp.int32), seed_axis) > 0
            return (t < T) & going

        steps, (_, last, _, _, _), records = jax.lax.while_loop(running, body, (jnp.zeros((), jnp.int32), start, empty))
        obs, state, avail, alive, actions, reward, terminated, filled, won = records  # each (T, E, ...)
        # Rows after the loop stopped: each env's final (frozen) observation, state and masks.
        padding = jnp.arange(T) >= steps
        obs, state, avail, alive = (
            jnp.where(padding.reshape(-1, *([1] * (x.ndim - 1))), final[None], x)
            for x, final in ((obs, last.obs), (state, last.state), (avail, last.avail), (alive, _alive(last))))

        episodes = Episodes(
            obs=_with_last(obs, last.obs),
            state=_with_last(state, last.state),
            avail=_with_last(avail, last.avail),
            alive=_with_last(alive, _alive(last)),
            actions=jnp.swapaxes(actions, 0, 1),
            reward=jnp.swapaxes(reward, 0, 1),
            terminated=jnp.swapaxes(terminated, 0, 1),
            filled=jnp.swapaxes(filled, 0, 1),
        )
        stats = RolloutStats(episode_return=episodes.reward.sum(axis=1),
                             episode_length=episodes.filled.sum(axis=1).astype(jnp.int32),
                             episode_won=won.any(axis=0))
        return episodes, stats

    def start_stream(self, key: jax.Array) -> StreamState:
        """Every env of the stream at the start of a fresh episode."""
        num_envs = self.config.train.num_envs
        env_state, timestep = jax.vmap(self.env.reset)(jax.random.split(key, num_envs))
        return StreamState(env_state=env_state, timestep=timestep, episode_return=jnp.zeros((num_envs,)))

    def stream_rollout(self, key: jax.Array, agent_params: Any, epsilon: jax.Array, stream: StreamState
                       ) -> tuple[Episodes, RolloutStats, StreamState]:
        """`stream_window` (W) steps of every env's auto-reset stream (`train.collector` "stream").

        An env whose episode ends (terminated or cut by the time limit) starts a new one on the
        next step. The agent RNNs and previous actions start afresh at the window's first step,
        as the learner unrolls a stored window from a zero hidden state (JaxMARL does the same
        with its rollouts), and wherever an episode begins (`starts`). Every step is a real
        transition (`filled` true); an episode's end is recorded as `terminated` whatever its
        cause (no bootstrap into the next episode's first observation); the window's last step
        bootstraps from column W, the observation after it. Returns the windows (E, W[+1], ...),
        the stats of the episodes that finished in the window, and the stream after it."""
        env, spec = self.env, self.spec
        W, E = self.stream_window, self.config.train.num_envs
        hidden = jnp.zeros((E, spec.num_agents, self.networks.agent.hidden))
        prev_actions = jnp.full((E, spec.num_agents), -1, jnp.int32)

        def step(carry, step_key):
            stream, hidden, prev_actions = carry
            act_key, env_key, reset_key = jax.random.split(step_key, 3)
            timestep = stream.timestep
            hidden, q = self.utilities(agent_params, hidden, timestep.obs, prev_actions)
            actions = action.masked_epsilon_greedy(act_key, q, timestep.avail, epsilon)  # (E, agents)
            env_state, next_timestep = jax.vmap(env.step)(jax.random.split(env_key, E), stream.env_state, actions)
            done = next_timestep.terminated | next_timestep.truncated
            episode_return = stream.episode_return + next_timestep.reward
            record = (timestep.obs, timestep.state, timestep.avail, _alive(timestep), prev_actions[:, 0] < 0,
                      actions, next_timestep.reward, done, done & next_timestep.won, jnp.where(done, episode_return, 0.0))
            reset_state, reset_timestep = jax.vmap(env.reset)(jax.random.split(reset_key, E))
            stream = StreamState(env_state=_per_env_where(done, reset_state, env_state),
                                 timestep=_per_env_where(done, reset_timestep, next_timestep),
                                 episode_return=jnp.where(done, 0.0, episode_return))
            hidden = jnp.where(done[:, None, None], 0.0, hidden)
            prev_actions = jnp.where(done[:, None], -1, actions)
            return (stream, hidden, prev_actions), record

        (stream, _, prev_actions), records = jax.lax.scan(step, (stream, hidden, prev_actions),
                                                          jax.random.split(key, W))
        obs, state, avail, alive, starts, actions, reward, done, won, finished_return = records  # each (W, E, ...)
        last = stream.timestep

        windows = Episodes(
            obs=_with_last(obs, last.obs), state=_with_last(state, last.state), avail=_with_last(avail, last.avail),
            alive=_with_last(alive, _alive(last)), actions=jnp.swapaxes(actions, 0, 1),
            reward=jnp.swapaxes(reward, 0, 1), terminated=jnp.swapaxes(done, 0, 1),
            filled=jnp.ones((E, W), bool), starts=_with_last(starts, prev_actions[:, 0] < 0))
        stats = RolloutStats(episode_return=finished_return.sum(axis=0), episode_length=jnp.full((E,), W, jnp.int32),
                             episode_won=won.sum(axis=0, dtype=jnp.int32),
                             episodes_finished=done.sum(axis=0, dtype=jnp.int32))
        return windows, stats, stream

    # ---- training -----------------------------------------------------------------------

    def init(self, key: jax.Array) -> TrainState:
        """A fresh training state; everything random derives from `key`."""
        params_key, key = jax.random.split(key)
        params = init_params(self.networks, self.spec, params_key)
        def zero():  # a distinct array per counter, so that the state can be donated to `jit`
            return jnp.zeros((), jnp.int32)

        stream = None
        if self.stream_window is not None:
            stream_key, key = jax.random.split(key)
            stream = self.start_stream(stream_key)
        return TrainState(
            learner=init_learner(params, self.optimizer, self.pieces.factorisation.init_carry(),
                                 standardise_rewards=self.config.algo.standardise_rewards),
            buffer=replay.init_buffer(self.spec, self.config.train.buffer_size, self.stream_window),
            key=key, env_steps=zero(), episodes=zero(), last_target_update_episode=zero(), stream=stream,
        )

    def epsilon(self, env_steps: jax.Array) -> jax.Array:
        ex = self.config.exploration
        return action.linear_epsilon(env_steps, ex.epsilon_start, ex.epsilon_finish, ex.epsilon_anneal_steps)

    def _packed_update(self, learner: LearnerState, batch: Episodes, key: jax.Array, seed_axis: str | None
                       ) -> tuple[LearnerState, UpdateMetrics]:
        """The update on `batch` packed into the fewest rows of `train.packed_rows` that hold it,
        or on the padded batch when none does (`lax.switch` runs only the branch chosen). Under
        the seeds' vmap (`seed_axis`) the seeds share one choice, the largest any of them needs:
        a per-seed choice would turn the switch into a select that runs every branch."""
        counts = self.packed_rows
        layout = replay.pack_layout(batch.filled)
        branch = jnp.sum(layout.rows_needed > jnp.asarray(counts))  # the first count that holds it
        if seed_axis is not None:
            branch = jax.lax.pmax(branch, seed_axis)

        def packed(rows):
            def update():
                packed_batch, starts = replay.pack(batch, layout, rows)
                return self._update(learner, packed_batch, key, starts)
            return update
        return jax.lax.switch(branch, [packed(rows) for rows in counts] + [lambda: self._update(learner, batch, key)])

    def _learn(self, learner: LearnerState, buffer: ReplayBuffer, key: jax.Array, seed_axis: str | None = None
               ) -> tuple[LearnerState, UpdateMetrics]:
        cfg = self.config.train

        def one_update(learner, update_key):
            # The loss's own key (the projector write-up's sampled V(s)) is folded in, so that the batch sampled
            # with `update_key` is the one of the algorithms that need no key.
            batch = replay.sample(buffer, update_key, cfg.batch_size)
            learner, batch = standardise_batch_rewards(learner, batch)  # when `algo.standardise_rewards`
            loss_key = jax.random.fold_in(update_key, 1)
            if not self.packed_rows:  # stream windows say where their episodes start
                return self._update(learner, batch.replace(starts=None), loss_key, batch.starts)
            return self._packed_update(learner, batch, loss_key, seed_axis)

        learner, metrics = jax.lax.scan(one_update, learner, jax.random.split(key, cfg.updates_per_iteration))
        return learner, jax.tree_util.tree_map(lambda x: x.mean(axis=0), metrics)

    def iteration(self, state: TrainState, active: jax.Array | None = None, seed_axis: str | None = None
                  ) -> tuple[TrainState, ChunkMetrics]:
        """Act (one episode per env), then `absorb` the episodes. With `active` false (a () bool)
        the state comes back unchanged and the metrics are zero (see `run_chunk_seeds`).
        `seed_axis`: the name of the seeds' vmap axis, when under one (`SEED_AXIS`)."""
        key, rollout_key = jax.random.split(state.key)
        epsilon = self.epsilon(state.env_steps)
        agent_params = state.learner.params["agent"]
        if self.stream_window is None:
            episodes, stats = self.rollout(rollout_key, agent_params, epsilon, self.config.train.num_envs, seed_axis)
        else:
            episodes, stats, stream = self.stream_rollout(rollout_key, agent_params, epsilon, state.stream)
        new_state, metrics = self.absorb(state.replace(key=key), episodes, stats, epsilon, active, seed_axis)
        if self.stream_window is not None:
            new_state = new_state.replace(stream=stream if active is None else _where_tree(active, stream, state.stream))
        if active is not None:  # a held seed keeps its key too
            new_state = new_state.replace(key=jnp.where(active, new_state.key, state.key))
        return new_state, metrics

    def absorb(self, state: TrainState, episodes: Episodes, stats: RolloutStats, epsilon: jax.Array,
               active: jax.Array | None = None, seed_axis: str | None = None) -> tuple[TrainState, ChunkMetrics]:
        """Store new episodes, learn once enough are stored, maybe copy the targets. Shared by
        compiled rollouts and by host-stepped environments (PettingZoo).

        `active` (a () bool, default true): when false nothing changes, and this is done piece by
        piece, so that the replay buffer is still updated in place (a `where` over the whole
        state would copy the buffer on every iteration)."""
        cfg, algo = self.config.train, self.config.algo
        old = state
        key, learn_key = jax.random.split(state.key)
        num_new = episodes.reward.shape[0] if stats.episodes_finished is None else stats.episodes_finished.sum()
        buffer = replay.insert(state.buffer, episodes, where=active)
        env_steps = state.env_steps + stats.episode_length.sum()
        num_episodes = state.episodes + num_new

        can_learn = buffer.size >= cfg.batch_size
        metrics_shape = jax.eval_shape(self._learn, state.learner, buffer, learn_key)[1]
        learner, update_metrics = jax.lax.cond(
            can_learn,
            lambda: self._learn(state.learner, buffer, learn_key, seed_axis),
            lambda: (state.learner, _zeros_like_tree(metrics_shape)),
        )
        copy_now = can_learn & (num_episodes - state.last_target_update_episode >= algo.target_update_interval)
        if algo.target_update == "soft":  # Polyak updates happen in the learner after every update
            copy_now = jnp.zeros((), bool)
        learner = jax.lax.cond(copy_now, copy_targets, lambda s: s, learner)

        new_state = TrainState(
            learner=learner, buffer=buffer, key=key, env_steps=env_steps, episodes=num_episodes,
            last_target_update_episode=jnp.where(copy_now, num_episodes, state.last_target_update_episode),
            stream=state.stream,
        )
        metrics = ChunkMetrics(
            iterations=jnp.ones((), jnp.int32), episodes=jnp.asarray(num_new, jnp.int32),
            env_steps=stats.episode_length.sum(), return_sum=stats.episode_return.sum(),
            won_sum=stats.episode_won.sum(dtype=jnp.int32),
            learn_iterations=can_learn.astype(jnp.int32), update=update_metrics, epsilon=epsilon,
        )
        if active is not None:  # everything but the buffer (masked in `insert`) is small
            new_state = _where_tree(active, new_state.replace(buffer=old.buffer), old).replace(buffer=buffer)
            metrics = _where_tree(active, metrics, _zeros_like_tree(metrics).replace(epsilon=epsilon))
        return new_state, metrics

    def run_chunk(self, state: TrainState, stop_env_steps: jax.Array) -> tuple[TrainState, ChunkMetrics]:
        """Iterate until `state.env_steps >= stop_env_steps`; return the summed metrics.

        For many seeds use `run_chunk_seeds`: under `jax.vmap` this loop's condition differs
        per seed, and JAX then selects every leaf of the state (the replay buffer too) between
        the old and the new value on every iteration."""
        zeros = _zeros_like_tree(jax.eval_shape(self.iteration, state)[1])

        def body(carry):
            state, totals = carry
            state, metrics = self.iteration(state)
            totals = jax.tree_util.tree_map(jnp.add, totals, metrics).replace(epsilon=metrics.epsilon)
            return state, totals

        return jax.lax.while_loop(lambda carry: carry[0].env_steps < stop_env_steps, body, (state, zeros))

    def run_chunk_seeds(self, states: TrainState, stop_env_steps: jax.Array) -> tuple[TrainState, ChunkMetrics]:
        """`run_chunk` for states with a leading seed axis: iterate all seeds together until every
        one reached `stop_env_steps`; a seed that got there first is held still (`active` false)
        until the others do. Each seed's result equals its own `run_chunk`."""
        if states.env_steps.shape[0] == 1:  # one seed: no batch axis inside (with a batch axis of
            # 1 it measured about 10% slower on predator-prey)
            state, metrics = self.run_chunk(jax.tree_util.tree_map(lambda x: x[0], states), stop_env_steps)
            return jax.tree_util.tree_map(lambda x: x[None], (state, metrics))
        iterate = jax.vmap(functools.partial(self.iteration, seed_axis=SEED_AXIS), axis_name=SEED_AXIS)
        zeros = _zeros_like_tree(jax.eval_shape(iterate, states, states.env_steps < 0)[1])

        def body(carry):
            states, totals = carry
            states, metrics = iterate(states, states.env_steps < stop_env_steps)
            totals = jax.tree_util.tree_map(jnp.add, totals, metrics).replace(epsilon=metrics.epsilon)
            return states, totals

        return jax.lax.while_loop(lambda carry: jnp.any(carry[0].env_steps < stop_env_steps), body,
                                  (states, zeros))


def make_train(config: Config, env: Environment | None = None) -> Callable[[jax.Array], tuple[TrainState, ChunkMetrics]]:
    """`train(key)`: a whole training run for `config`, jittable.

    Given a batch of keys (`seed_keys(seed, n)`, shape (n,)) it trains the n seeds together
    (`Trainer.run_chunk_seeds`); the states and metrics come back with a leading seed axis.
    `jax.vmap(train)` over keys also works, but is slower: vmapping the training loop makes JAX
    select the whole state, replay buffer included, on every iteration.
    The config is validated and the environment checked here, before anything is compiled."""
    trainer = Trainer(config, env)
    check_env(trainer.env)

    def train(key: jax.Array) -> tuple[TrainState, ChunkMetrics]:
        total = jnp.asarray(trainer.config.train.total_env_steps, jnp.int32)
        if key.ndim == 0:
            return trainer.run_chunk(trainer.init(key), total)
        return trainer.run_chunk_seeds(jax.vmap(trainer.init)(key), total)

    return train


def min_env_steps(states: TrainState) -> int:
    """Env steps of the seed that has taken the fewest (states with a leading seed axis)."""
    return int(np.min(np.asarray(states.env_steps)))


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """Keys of seeds seed, seed + 1, ...: seed s of a multi-seed run is the run `--seed s`."""
    return jnp.stack([jax.random.key(seed + i) for i in range(num_seeds)])
