"""The streaming collector (`train.collector` "stream"): windows of an auto-reset stream that
carries on across iterations, whose episodes the learner treats as the separate episodes they
are (checked against the same steps laid out one episode per row)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wqmix import buffer as replay, config as cfg
from wqmix.buffer import Episodes
from wqmix.config import ALGORITHMS, NetworkConfig
from wqmix.errors import ConfigError
from wqmix.action import masked_greedy
from wqmix.agents import init_params
from wqmix.learner import make_loss, stored_agent_inputs, time_major, unroll_episodes
from wqmix.train import Trainer, seed_keys

pytestmark = pytest.mark.integration  # stream collection and training runs

NET = NetworkConfig(agent_hidden=8, mixer_embed=4, hypernet_embed=8, central_agent_hidden=8, central_mixer_hidden=16)
WINDOW, ENVS, TIME_LIMIT = 8, 3, 12


def _config(algo: str = "qmix", num_seeds: int = 1, **train) -> cfg.Config:
    """A small predator-prey whose random episodes end at many lengths, some by its time limit."""
    base = cfg.with_algo(cfg.official_defaults("predator-prey"), algo)
    return cfg.validate(dataclasses.replace(
        base,
        env=dataclasses.replace(base.env, grid_size=4, num_agents=2, num_prey=1, punishment=0.0,
                                time_limit=TIME_LIMIT, agents_to_capture=1),
        network=NET,
        train=dataclasses.replace(base.train, **{"collector": "stream", "stream_window": WINDOW, "num_envs": ENVS,
                                                 "total_env_steps": 240, "batch_size": 4, "buffer_size": 20, **train}),
        algo=dataclasses.replace(base.algo, target_update_interval=10),
        num_seeds=num_seeds))


@pytest.fixture(scope="module")
def windows():
    """Six consecutive windows of one stream under a uniform policy, with their stats."""
    trainer = Trainer(_config())
    state = trainer.init(jax.random.key(0))
    rollout = jax.jit(trainer.stream_rollout)
    stream, out = state.stream, []
    for k in range(6):
        window, stats, stream = rollout(jax.random.key(k), state.learner.params["agent"], jnp.float32(1.0), stream)
        out.append((window, stats))
    return trainer, out, rollout, stream, state.learner.params["agent"]


def test_windows_carry_the_stream_on_and_end_episodes_where_the_next_begins(windows):
    out = windows[1]
    for (window, stats), (following, _) in zip(out, out[1:]):
        # Column W of a window (the observation after its last step) is where the next one starts.
        for name in ("obs", "state", "avail"):
            np.testing.assert_array_equal(np.asarray(getattr(window, name))[:, -1],
                                          np.asarray(getattr(following, name))[:, 0], err_msg=name)
    for window, stats in out:
        starts, ended = np.asarray(window.starts), np.asarray(window.terminated)
        assert starts[:, 0].all() and np.asarray(window.filled).all()
        np.testing.assert_array_equal(ended, starts[:, 1:])  # an episode ends exactly where the next begins
        np.testing.assert_array_equal(np.asarray(stats.episodes_finished), ended.sum(axis=1))
        np.testing.assert_array_equal(np.asarray(stats.episode_length), np.full(ENVS, WINDOW))

    # Episodes rebuilt from the whole stream: none longer than the time limit, every one that
    # reaches it ends there, and each window's returns are those of the episodes it finished.
    rewards = np.concatenate([np.asarray(w.reward) for w, _ in out], axis=1)  # (E, 6W)
    ends = np.concatenate([np.asarray(w.terminated) for w, _ in out], axis=1)
    lengths_seen, cut = [], 0
    for e in range(ENVS):
        begin, returns = 0, np.zeros(len(out))
        for t in range(rewards.shape[1]):
            if ends[e, t]:
                length = t + 1 - begin
                lengths_seen.append(length)
                returns[t // WINDOW] += rewards[e, begin:t + 1].sum()
                begin = t + 1
        assert rewards.shape[1] - begin <= TIME_LIMIT  # the running episode too
        np.testing.assert_allclose([float(s.episode_return[e]) for _, s in out], returns, rtol=1e-6)
        cut += sum(1 for L in lengths_seen if L == TIME_LIMIT)
    assert max(lengths_seen) == TIME_LIMIT and min(lengths_seen) < TIME_LIMIT  # both kinds of ending occur
    assert cut > 0


def _episodes_apart(window: Episodes) -> Episodes:
    """The steps of `window` laid out one episode (piece) per row, padded to the window's
    length, as whole-episode batches are: each piece ends with the column after its last step,
    and a piece cut by the window's end is not terminated (it bootstraps)."""
    W = window.reward.shape[1]
    fields = {name: np.asarray(getattr(window, name)) for name in
              ("obs", "state", "avail", "alive", "actions", "reward", "terminated")}
    starts = np.asarray(window.starts)
    rows = {name: [] for name in (*fields, "filled")}
    for e in range(starts.shape[0]):
        begins = [t for t in range(W) if starts[e, t]] + [W]
        for begin, end in zip(begins, begins[1:]):
            L = end - begin
            columns = np.minimum(np.arange(W + 1), L) + begin  # padding repeats the column after the end
            steps = np.arange(W) + begin
            real = np.arange(W) < L
            for name in ("obs", "state", "avail", "alive"):
                rows[name].append(fields[name][e, columns])
            for name in ("actions", "reward", "terminated"):
                picked = fields[name][e, np.minimum(steps, W - 1)]
                rows[name].append(np.where(real.reshape(-1, *([1] * (picked.ndim - 1))), picked, np.zeros_like(picked)))
            rows["filled"].append(real)
    return Episodes(**{name: jnp.asarray(np.stack(v)) for name, v in rows.items()})


@pytest.mark.parametrize("algo_name, td_lambda", [("ow-qmix", 0.0), ("qmix", 0.6)])
def test_a_window_gives_the_loss_of_its_episodes_laid_out_apart(windows, algo_name, td_lambda):
    trainer, out = windows[:2]
    window = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *[w for w, _ in out[1:4]])
    assert int(np.asarray(window.starts)[:, 1:].sum()) >= 3  # several episodes begin inside windows
    apart = _episodes_apart(window)
    algo = dataclasses.replace(ALGORITHMS[algo_name], td_lambda=td_lambda)
    networks = trainer.networks if algo_name == "qmix" else Trainer(_config(algo_name)).networks
    params = init_params(networks, trainer.spec, jax.random.key(1))
    target = init_params(networks, trainer.spec, jax.random.key(2))
    grad = jax.jit(jax.grad(make_loss(algo, networks), has_aux=True))
    window_grads, window_metrics = grad(params, target, window.replace(starts=None), 0, None, None, window.starts)
    apart_grads, apart_metrics = grad(params, target, apart, 0, None, None, None)
    assert float(apart_metrics.loss) > 1e-3
    for name in ("loss", "qmix_loss", "central_loss", "mean_weight", "q_taken_mean", "target_mean", "td_error_abs"):
        np.testing.assert_allclose(float(getattr(window_metrics, name)), float(getattr(apart_metrics, name)),
                                   rtol=2e-5, atol=1e-6, err_msg=name)
    for a, b in zip(jax.tree_util.tree_leaves(window_grads), jax.tree_util.tree_leaves(apart_grads)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    # Without the resets one episode's memory would run into the next.
    _, unreset = grad(params, target, window.replace(starts=None), 0, None, None, None)
    assert abs(float(unreset.loss) - float(apart_metrics.loss)) > 1e-4


def test_greedy_acting_sees_what_the_learner_unrolls(windows):
    """With epsilon 0 the actions taken are the greedy actions of the utilities the learner
    computes from the stored window: the agent RNNs start afresh at the window and at each
    episode it holds, while acting and while learning."""
    trainer, _, rollout, stream, agent_params = windows
    # Weights scaled up so that the greedy action depends on the RNN's memory (at init it
    # hardly does, and a missing reset would go unseen).
    agent_params = jax.tree_util.tree_map(lambda x: 6.0 * x, agent_params)
    episode_began_inside = 0
    for k in range(3):
        window, _, stream = rollout(jax.random.key(10 + k), agent_params, jnp.float32(0.0), stream)
        tm = time_major(window)
        starts = jnp.swapaxes(window.starts, 0, 1)
        q = unroll_episodes(trainer.networks.agent, agent_params,
                            stored_agent_inputs(trainer.networks, tm, starts), starts)  # (W+1, E, agents, A)
        greedy = np.asarray(masked_greedy(q, tm.avail))[:-1]
        np.testing.assert_array_equal(greedy, np.asarray(tm.actions))
        episode_began_inside += int(np.asarray(window.starts)[:, 1:-1].sum())
    assert episode_began_inside > 0


def test_the_update_gets_the_sampled_windows_starts(windows):
    trainer, out = windows[:2]
    state = trainer.init(jax.random.key(0))
    buffer = state.buffer
    for window, _ in out:
        buffer = replay.insert(buffer, window)
    seen = {}

    def update(learner, batch, key=None, starts=None):  # hands back what the learner is given
        seen["starts given"] = starts is not None
        return learner, (batch.actions, jnp.zeros(batch.obs.shape[:2], bool) if starts is None else starts)

    trainer._update = update
    _, (sampled_actions, sampled_starts) = trainer._learn(state.learner, buffer, jax.random.key(3))
    assert seen["starts given"]
    stored = np.asarray(buffer.data.starts)
    # Each sampled row's starts are those of the stored window it came from (matched by its
    # random actions, which tell the windows apart).
    actions = np.asarray(buffer.data.actions)
    for row_actions, row_starts in zip(np.asarray(sampled_actions), np.asarray(sampled_starts)):
        [slot] = np.flatnonzero((actions == row_actions).all(axis=(1, 2)))
        np.testing.assert_array_equal(row_starts, stored[slot])


@pytest.mark.slow  # two short training runs: `pytest -m slow`
def test_stream_training_learns_and_seeds_together_equal_single_runs():
    together = Trainer(_config(num_seeds=2))
    states, metrics = jax.jit(together.run_chunk_seeds)(jax.vmap(together.init)(seed_keys(0, 2)), jnp.int32(240))
    alone = Trainer(_config())
    state, alone_metrics = jax.jit(alone.run_chunk)(alone.init(seed_keys(1, 1)[0]), jnp.int32(240))
    assert int(state.env_steps) == 240 and int(state.learner.steps) > 5
    assert int(alone_metrics.episodes) == int(state.episodes) > 0
    for a, b in zip(jax.tree_util.tree_leaves(state.learner.params),
                    jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x: x[1], states.learner.params))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert int(metrics.episodes[1]) == int(alone_metrics.episodes)


def test_stream_needs_a_compiled_env_and_a_positive_window():
    with pytest.raises(ConfigError, match="train.collector"):
        Trainer(cfg.validate(dataclasses.replace(
            cfg.env_default("pettingzoo"), train=dataclasses.replace(cfg.TrainConfig(), collector="stream"))))
    with pytest.raises(ConfigError, match="train.stream_window"):
        _config(stream_window=0)


def test_a_chunk_where_no_episode_ended_logs_no_train_return():
    """A stream chunk can end before any episode does: its row must say "no return" (None), not a
    return of 0 that would sit on the learning curve; a chunk with episodes gives their mean."""
    import types

    from wqmix.driver import chunk_rows
    from wqmix.learner import UpdateMetrics
    from wqmix.train import ChunkMetrics

    zeros = np.zeros(2, np.float32)
    metrics = ChunkMetrics(
        iterations=np.array([4, 4]), episodes=np.array([0, 3]), env_steps=np.array([32, 32]),
        return_sum=np.array([0.0, -4.5]), won_sum=np.array([0, 2]), learn_iterations=np.array([0, 0]),
        update=UpdateMetrics(*[zeros] * (len(dataclasses.fields(UpdateMetrics)) - 1), extras={}), epsilon=np.array([0.5, 0.5]))
    states = types.SimpleNamespace(env_steps=np.array([32, 32]), episodes=np.array([0, 3]), updates=np.array([0, 0]))
    first, second = chunk_rows(metrics, states, [7, 8], wall_time=1.0, steps_per_s=64.0, reports_wins=True)
    assert first["train_return"] is None and first["train_win_rate"] is None
    assert second["train_return"] == pytest.approx(-1.5) and second["train_win_rate"] == pytest.approx(2 / 3)
    assert first["loss"] is None  # no update ran either
