"""The paper's update, written once: Weighted QMIX's loss (`make_loss`) and one gradient step
(`make_update`). Every algorithm is this function with other pieces (`wqmix.learner.pieces`),
chosen from the config by `wqmix.learner.assemble.pieces_for`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from wqmix import losses
from wqmix.action import masked_greedy
from wqmix.agents import Networks, Params
from wqmix.buffer import Episodes
from wqmix.config import AlgoConfig
from wqmix.learner.assemble import pieces_for
from wqmix.learner.pieces import Agents, Context, Pieces, Transitions, pick, unroll_episodes, unroll_with_hidden


@struct.dataclass
class LearnerState:
    params: Params
    target_params: Params
    opt_state: Any
    steps: jax.Array  # () int32: gradient updates so far (the omega anneal counts these)
    carry: dict[str, jax.Array]  # what the factorisation keeps between updates (`Factorisation.init_carry`)
    reward_moments: losses.RewardMoments | None = None  # with `algo.standardise_rewards`; None: off


@struct.dataclass
class UpdateMetrics:
    loss: jax.Array
    qmix_loss: jax.Array
    central_loss: jax.Array
    mean_weight: jax.Array  # mean of w over valid steps
    grad_norm: jax.Array  # global norm before clipping
    q_taken_mean: jax.Array
    target_mean: jax.Array
    td_error_abs: jax.Array
    extras: dict[str, jax.Array]  # the factorisation's own metrics (`Mixed.metrics`), () each


def make_loss(algo: AlgoConfig, networks: Networks, pieces: Pieces | None = None):
    """loss(params, target_params, batch, steps=0, carry=None, key=None, starts=None) ->
    (loss, UpdateMetrics without grad_norm). `steps` (updates so far) and `carry` (what the
    factorisation kept from the last update; None or empty: its initial carry) are the
    learner's state; `key` is read only by pieces that sample; `starts` (B, T+1) bool marks where
    episodes begin in a batch from `buffer.pack` (None: one episode per row, from its first step).
    `pieces` default to the algorithm's (`pieces_for`)."""
    loss_and_carry = _make_loss_and_carry(algo, networks, pieces or pieces_for(algo, networks))

    def loss_fn(*args, **kwargs):
        loss, (metrics, _) = loss_and_carry(*args, **kwargs)
        return loss, metrics

    return loss_fn


def _make_loss_and_carry(algo: AlgoConfig, networks: Networks, pieces: Pieces):
    """As `make_loss`, with the factorisation's new carry beside the metrics."""
    mixer, target, weighting = pieces.factorisation, pieces.target, pieces.weighting

    def loss_fn(params: Params, target_params: Params, batch: Episodes, steps: jax.Array | int = 0,
                carry: dict[str, jax.Array] | None = None, key: jax.Array | None = None,
                starts: jax.Array | None = None):
        d = Transitions.of(networks, batch, starts)  # time-major
        context = Context(steps=steps, carry=mixer.init_carry() if not carry else carry, key=key)

        # Online utilities (QMIX's, VDN's, IQL's agents); their greedy joint action u*(s); Q_tot(s, u).
        hidden, q = unroll_with_hidden(networks.agent, params["agent"], d.inputs, d.starts)  # (T+1, B, agents, .)
        greedy = masked_greedy(jax.lax.stop_gradient(q), d.avail)  # (T+1, B, agents)
        agents = Agents(utilities=q, greedy=greedy, chosen=jnp.where(d.alive[:-1], pick(q[:-1], d.actions), 0.0),
                        hidden=hidden)
        mixed = mixer.mix(params, agents, d, context)
        q_tot = mixed.q_tot  # (T, B, heads)
        heads = q_tot.shape[-1]
        mask = jnp.broadcast_to(d.filled[..., None], q_tot.shape)
        if heads > 1:  # independent heads (IQL): a departed agent's head has no loss
            mask = mask & d.alive[:-1]

        # Targets y from V(s') of the target source (WQMIX: target Q-hat* at u*(s')); a
        # time-limit cut (last filled step, not terminated) bootstraps; TD(lambda) or one step.
        boot = target(params, target_params, agents, d, weighting.needs_greedy_value)
        next_value = mixer.bootstrap(params, target_params, boot, d, mixed, context)  # (T, B, heads)
        truncated = losses.time_limit_cuts(d.filled, d.terminated)
        reward, terminated, truncated = (jnp.broadcast_to(x[..., None], q_tot.shape)
                                         for x in (d.reward, d.terminated, truncated))
        if algo.td_lambda > 0:
            y = losses.lambda_targets(reward, terminated, truncated, next_value, algo.gamma, algo.td_lambda)
        else:
            y = losses.one_step_targets(reward, terminated, next_value, algo.gamma)
        y = jax.lax.stop_gradient(y)

        # The weighting: the whole of Weighted QMIX's change to the QMIX loss.
        w = jax.lax.stop_gradient(weighting(q_tot, y, agents, d, boot))
        qmix_loss = losses.masked_weighted_mse(q_tot, y, w, mask)

        # Q-hat* itself learns the same targets, unweighted. (Over all T+1 steps, the last
        # dropped: its inputs are shared with the other networks instead of copied.)
        central_loss = jnp.zeros(())
        if algo.central:
            central_q = unroll_episodes(networks.central_agent, params["central_agent"], d.inputs, d.starts)[:-1]
            central_chosen = jnp.where(d.alive[:-1], pick(central_q, d.actions), 0.0)
            central_q_tot = networks.central_mixer.apply(params["central_mixer"], central_chosen, d.state[:-1])
            central_loss = losses.masked_weighted_mse(central_q_tot, y, jnp.ones_like(y), mask)

        extra_loss = sum(mixed.losses.values(), jnp.zeros(()))
        loss = algo.qmix_loss_coef * qmix_loss + algo.central_loss_coef * central_loss + extra_loss
        metrics = UpdateMetrics(
            loss=loss, qmix_loss=qmix_loss, central_loss=central_loss, mean_weight=losses.masked_mean(w, mask),
            grad_norm=jnp.zeros(()), q_taken_mean=losses.masked_mean(q_tot, mask),
            target_mean=losses.masked_mean(y, mask), td_error_abs=losses.masked_mean(jnp.abs(q_tot - y), mask),
            extras=dict(mixed.metrics))
        return loss, (metrics, dict(mixed.carry))

    return loss_fn


def make_update(algo: AlgoConfig, networks: Networks, optimizer: optax.GradientTransformation,
                pieces: Pieces | None = None):
    """update(learner_state, batch, key=None, starts=None) -> (learner_state, UpdateMetrics): one
    gradient step, then (soft target updates) target <- tau * online + (1 - tau) * target. `key`
    is read only by pieces that sample; `starts` comes with a packed batch (`make_loss`)."""
    loss_fn = _make_loss_and_carry(algo, networks, pieces or pieces_for(algo, networks))

    def update(state: LearnerState, batch: Episodes, key: jax.Array | None = None,
               starts: jax.Array | None = None) -> tuple[LearnerState, UpdateMetrics]:
        grads, (metrics, carry) = jax.grad(loss_fn, has_aux=True)(state.params, state.target_params, batch,
                                                                  state.steps, state.carry, key, starts)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        target_params = state.target_params
        if algo.target_update == "soft":
            target_params = optax.incremental_update(params, target_params, algo.tau)
        metrics = metrics.replace(grad_norm=optax.tree.norm(grads))
        return state.replace(params=params, target_params=target_params, opt_state=opt_state, steps=state.steps + 1,
                             carry=carry), metrics

    return update


def init_learner(params: Params, optimizer: optax.GradientTransformation,
                 carry: dict[str, jax.Array] | None = None, standardise_rewards: bool = False) -> LearnerState:
    """The learner before its first update. `carry`: the factorisation's initial carry
    (`Factorisation.init_carry`; None: nothing, which its first update fills in).
    `standardise_rewards`: keep running reward moments (`standardise_batch_rewards`)."""
    return LearnerState(params=params, target_params=jax.tree_util.tree_map(jnp.copy, params),
                        opt_state=optimizer.init(params), steps=jnp.zeros((), jnp.int32), carry=dict(carry or {}),
                        reward_moments=losses.initial_reward_moments() if standardise_rewards else None)


def standardise_batch_rewards(state: LearnerState, batch: Episodes) -> tuple[LearnerState, Episodes]:
    """EPyMARL's `standardise_rewards`, before the update: the batch's rewards merged into the
    running moments, then replaced by (r - mean) / std under the moments that include them.
    Unchanged when the learner keeps no moments."""
    if state.reward_moments is None:
        return state, batch
    moments = losses.update_reward_moments(state.reward_moments, batch.reward, batch.filled)
    return (state.replace(reward_moments=moments),
            batch.replace(reward=losses.standardise_rewards(batch.reward, moments)))


def copy_targets(state: LearnerState) -> LearnerState:
    """Hard update: every target network becomes a copy of its online network."""
    return state.replace(target_params=state.params)
