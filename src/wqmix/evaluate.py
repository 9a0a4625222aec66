"""Greedy evaluation of a trained policy, and the learned tables of the matrix game."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from wqmix.agents import Params, agent_inputs, unroll_agents
from wqmix.envs.matrix_game import MatrixGame
from wqmix.learner import LearnerState
from wqmix.learner.projector import projector_term
from wqmix.networks import AttentionMixer, DuelingMixer, JointActionNetwork
from wqmix.train import RolloutStats, Trainer


def greedy_episodes(trainer: Trainer, params: Params, key: jax.Array, num_episodes: int) -> RolloutStats:
    """Return, length and outcome of `num_episodes` test episodes of the greedy (epsilon = 0)
    policy, played in parallel. Each field has shape (episodes,)."""
    _, stats = trainer.rollout(key, params["agent"], jnp.zeros((), jnp.float32), num_episodes)
    return stats


def first_step_utilities(trainer: Trainer, params: Params, agent_key: str) -> jax.Array:
    """Utilities Q_i(tau_i^0, .) of every agent at the first step of an episode. (agents, actions)"""
    return _first_step(trainer, params, agent_key)[1]


def _first_step(trainer: Trainer, params: Params, agent_key: str) -> tuple[jax.Array, jax.Array]:
    """(hidden state (agents, H), utilities (agents, actions)) of every agent after the first step."""
    _, timestep = trainer.env.reset(jax.random.key(0))
    agent = getattr(trainer.networks, agent_key)
    inputs = agent_inputs(trainer.networks, timestep.obs, jnp.full((trainer.spec.num_agents,), -1))
    hidden = jnp.zeros((1, trainer.spec.num_agents, agent.hidden))
    hs, q = unroll_agents(agent.clone(all_hidden=True), params[agent_key], hidden, inputs[None, None])
    return hs[0, 0], q[0, 0]


def _joint_table(trainer: Trainer, params: Params, agent_key: str, mixer_key: str) -> jax.Array:
    """Mixed value of every joint action (a0, a1) of a two-agent one-step game. (n, n)"""
    hidden, q = _first_step(trainer, params, agent_key)
    _, timestep = trainer.env.reset(jax.random.key(0))
    n = q.shape[-1]
    actions = jnp.stack(jnp.meshgrid(jnp.arange(n), jnp.arange(n), indexing="ij"), axis=-1)  # (n, n, 2)
    joint = jnp.stack([q[0][actions[..., 0]], q[1][actions[..., 1]]], axis=-1)  # (n, n, 2)
    state = jnp.broadcast_to(timestep.state, (n, n, timestep.state.shape[-1]))
    mixer, mixer_params = getattr(trainer.networks, mixer_key), params[mixer_key]
    one_hot = jax.nn.one_hot(actions, n)  # (n, n, 2, n)
    if isinstance(mixer, DuelingMixer):  # QPLEX: the advantage against each agent's max (all available)
        return mixer.apply(mixer_params, joint, state, one_hot, jnp.broadcast_to(q.max(-1), joint.shape))[..., 0]
    if isinstance(mixer, JointActionNetwork):  # QTRAN: Q_jt of the agents' hidden states and actions
        return mixer.apply(mixer_params, state, jnp.broadcast_to(hidden, (n, n, *hidden.shape)), one_hot)[0][..., 0]
    if isinstance(mixer, AttentionMixer):  # Qatten: `mask_dead` reads the actions
        return mixer.apply(mixer_params, joint, state, actions)[..., 0]
    return mixer.apply(mixer_params, joint, state)[..., 0]


def _projector_table(trainer: Trainer, learner: LearnerState, q_mono: jax.Array) -> jax.Array:
    """The projector write-up's sum_k omega_k Q_proj,k(s, (a0, a1)) for every joint action, with omega as the
    learner computes it (advantage: V(s) exact over the joint actions, the learner's running
    mean of |A|). q_mono (n, n). Returns (n, n)."""
    params, projector, n = learner.params, trainer.config.algo.projector, trainer.spec.num_actions
    _, timestep = trainer.env.reset(jax.random.key(0))
    actions = jnp.stack(jnp.meshgrid(jnp.arange(n), jnp.arange(n), indexing="ij"), axis=-1)  # (n, n, 2)
    state = jnp.broadcast_to(timestep.state, (n, n, timestep.state.shape[-1]))
    value = None
    if projector.omega == "advantage":  # V(s) is the mean of Q_mono over the (all available) joint actions
        value = jnp.broadcast_to(jnp.mean(q_mono), (n, n, 1))
    term, _, _ = projector_term(trainer.networks, projector, params, state, actions, q_mono[..., None], value,
                                learner.carry["abs_advantage"], learner.steps)
    return term[..., 0]


def joint_tables(trainer: Trainer, learner: LearnerState) -> tuple[jax.Array, jax.Array]:
    """(Q_mono, Q_tot) of every joint action (a0, a1) of a two-agent one-step game, each (n, n):
    the mixer's value, and with the write-up's projector Q_mono + sum_k omega_k Q_proj,k (else the
    same). Traceable (the matrix-games suite vmaps it)."""
    q_mono = _joint_table(trainer, learner.params, "agent", "mixer")
    if trainer.networks.projector is None:
        return q_mono, q_mono
    return q_mono, q_mono + _projector_table(trainer, learner, q_mono)


def matrix_game_tables(trainer: Trainer, learner: LearnerState) -> dict[str, Any]:
    """What the agents learned on the matrix game: per-agent utilities, the greedy joint action,
    Q_tot of every joint action (when there is a mixer), Q-hat* (with a central estimator) and,
    with the write-up's projector, Q_mono beside Q_tot = Q_mono + sum_k omega_k Q_proj,k and the
    argmax of that Q_tot (which per-agent greedy acting need not reach)."""
    assert isinstance(trainer.env, MatrixGame)
    params = learner.params
    utilities = first_step_utilities(trainer, params, "agent")
    greedy = [int(a) for a in jnp.argmax(utilities, axis=-1)]
    payoff = np.asarray(trainer.env.payoff)
    tables: dict[str, Any] = {
        "greedy_joint_action": greedy,
        "greedy_return": float(payoff[greedy[0], greedy[1]]),
        "agent_q": np.asarray(utilities).round(4).tolist(),
        "q_tot": None,
        "q_central": None,
    }
    if trainer.config.algo.mixer != "none":
        q_mono, q_tot = (np.asarray(x) for x in joint_tables(trainer, learner))
        if trainer.networks.projector is not None:
            tables["q_mono"] = q_mono.round(4).tolist()
            tables["q_tot_argmax"] = [int(i) for i in np.unravel_index(np.argmax(q_tot), q_tot.shape)]
        tables["q_tot"] = q_tot.round(4).tolist()
    if trainer.config.algo.central:
        tables["q_central"] = np.asarray(
            _joint_table(trainer, params, "central_agent", "central_mixer")).round(4).tolist()
    return tables
