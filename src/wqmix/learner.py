"""One update function for OW-QMIX, CW-QMIX, QMIX, VDN, IQL and the paper's ablation.

The algorithms differ in three pieces chosen from the config: the mixer (QMIX, VDN, none),
where the target comes from (the target central Q-hat* or the algorithm's own target
networks), and the weight of each squared TD error (none, OW, CW). Everything else is shared.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from wqmix import losses
from wqmix.action import masked_greedy
from wqmix.agents import Networks, Params, agent_inputs, unroll_agents
from wqmix.buffer import Episodes
from wqmix.config import AlgoConfig, OptimConfig


@struct.dataclass
class LearnerState:
    params: Params
    target_params: Params
    opt_state: Any


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


def make_optimizer(optim: OptimConfig) -> optax.GradientTransformation:
    """Global-norm clipping over all parameters, then RMSprop (PyTorch semantics: eps outside
    the square root, no bias correction) or Adam."""
    if optim.name == "rmsprop":
        base = optax.rmsprop(optim.lr, decay=optim.rmsprop_decay, eps=optim.eps, eps_in_sqrt=False)
    else:
        base = optax.adam(optim.lr, eps=optim.eps)
    return optax.chain(optax.clip_by_global_norm(optim.grad_norm_clip), base)


def _pick(q: jax.Array, actions: jax.Array) -> jax.Array:
    """q: (..., actions); actions: (...) int -> (...): the utility of the given action."""
    return jnp.take_along_axis(q, actions[..., None], axis=-1)[..., 0]


def time_major(batch: Episodes) -> Episodes:
    """Every field with its batch and time axes swapped: (T or T+1, B, ...)."""
    return jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), batch)


def stored_agent_inputs(networks: Networks, batch: Episodes) -> jax.Array:
    """The agent networks' inputs at every stored step, as they were while acting: obs_t ‖
    one-hot u_{t-1} ‖ one-hot id. batch time-major. Returns (T+1, B, agents, in)."""
    prev_actions = jnp.concatenate([jnp.full_like(batch.actions[:1], -1), batch.actions], axis=0)
    return agent_inputs(networks, batch.obs, prev_actions)


def unroll_episodes(agent, params, inputs: jax.Array) -> jax.Array:
    """Utilities of an agent network run over whole stored episodes from a zero hidden state.
    inputs (T+1, B, agents, in) -> (T+1, B, agents, actions)."""
    B, n = inputs.shape[1], inputs.shape[2]
    hidden = jnp.zeros((B, n, agent.hidden))
    return unroll_agents(agent, params, hidden, inputs)[1]


def make_loss(algo: AlgoConfig, networks: Networks):
    """loss(params, target_params, batch) -> (loss, UpdateMetrics without grad_norm)."""
    def loss_fn(params: Params, target_params: Params, batch: Episodes):
        tm = time_major(batch)
        state, avail, actions = tm.state, tm.avail, tm.actions  # (T+1, B, .), (T+1, B, agents, .), (T, B, agents)
        reward, terminated = tm.reward[..., None], tm.terminated[..., None]  # (T, B, 1)
        filled = tm.filled  # (T, B)
        alive = tm.alive  # (T+1, B, agents): departed agents' utilities are zeroed
        inputs = stored_agent_inputs(networks, tm)

        # Online QMIX (or VDN / IQL) utilities; their greedy joint action u*(s) at every step.
        q = unroll_episodes(networks.agent, params["agent"], inputs)
        greedy = masked_greedy(jax.lax.stop_gradient(q), avail)  # (T+1, B, agents)
        chosen = jnp.where(alive[:-1], _pick(q[:-1], actions), 0.0)  # (T, B, agents)
        q_tot = networks.mixer.apply(params["mixer"], chosen, state[:-1])  # (T, B, heads)

        # Target values V(s') = Q(s', u*(s')) from the target central Q-hat* (WQMIX) or from the
        # algorithm's own target networks (QMIX, VDN, IQL, ablation). CW also needs them at s.
        agent_key, mixer_key = ("central_agent", "central_mixer") if algo.central else ("agent", "mixer")
        target_q = unroll_episodes(getattr(networks, agent_key), target_params[agent_key], inputs)
        target_greedy_q = jnp.where(alive, _pick(target_q, greedy), 0.0)  # (T+1, B, agents)
        target_mixer = functools.partial(getattr(networks, mixer_key).apply, target_params[mixer_key])
        if algo.weighting == "cw":
            target_greedy_value = target_mixer(target_greedy_q, state)  # (T+1, B, heads)
            next_value, current_greedy_value = target_greedy_value[1:], target_greedy_value[:-1]
        else:  # the mixer only where it is needed: s_1 .. s_T
            next_value = target_mixer(target_greedy_q[1:], state[1:])  # (T, B, heads)

        # Targets y; a time-limit cut (last filled step, not terminated) bootstraps.
        truncated = losses.time_limit_cuts(filled, terminated[..., 0])[..., None]
        heads = q_tot.shape[-1]
        reward, terminated, truncated = (jnp.broadcast_to(x, (*x.shape[:-1], heads))
                                         for x in (reward, terminated, truncated))
        if algo.td_lambda > 0:
            y = losses.lambda_targets(reward, terminated, truncated, next_value, algo.gamma, algo.td_lambda)
        else:
            y = losses.one_step_targets(reward, terminated, next_value, algo.gamma)
        y = jax.lax.stop_gradient(y)
        mask = jnp.broadcast_to(filled[..., None], y.shape)
        if heads > 1:  # independent heads (IQL): a departed agent's head has no loss
            mask = mask & alive[:-1]

        # The weighting: the whole of Weighted QMIX's change to the QMIX loss.
        if algo.weighting == "ow":
            w = losses.ow_weights(q_tot, y, algo.alpha)
        elif algo.weighting == "cw":
            w = losses.cw_weights(actions, greedy[:-1], y[..., 0], current_greedy_value[..., 0], algo.alpha)[..., None]
        else:
            w = jnp.ones_like(y)
        w = jax.lax.stop_gradient(w)
        qmix_loss = losses.masked_weighted_mse(q_tot, y, w, mask)

        # Q-hat* itself learns the same targets, unweighted.
        central_loss = jnp.zeros(())
        if algo.central:
            # Over all T+1 steps, the last dropped: one step more than needed, but the inputs are
            # shared with the other networks instead of copied without their last step.
            central_q = unroll_episodes(networks.central_agent, params["central_agent"], inputs)[:-1]
            central_chosen = jnp.where(alive[:-1], _pick(central_q, actions), 0.0)
            central_q_tot = networks.central_mixer.apply(params["central_mixer"], central_chosen, state[:-1])
            central_loss = losses.masked_weighted_mse(central_q_tot, y, jnp.ones_like(y), mask)

        loss = algo.qmix_loss_coef * qmix_loss + algo.central_loss_coef * central_loss
        metrics = UpdateMetrics(
            loss=loss,
            qmix_loss=qmix_loss,
            central_loss=central_loss,
            mean_weight=losses.masked_mean(w, mask),
            grad_norm=jnp.zeros(()),
            q_taken_mean=losses.masked_mean(q_tot, mask),
            target_mean=losses.masked_mean(y, mask),
            td_error_abs=losses.masked_mean(jnp.abs(q_tot - y), mask),
        )
        return loss, metrics

    return loss_fn


def make_update(algo: AlgoConfig, networks: Networks, optimizer: optax.GradientTransformation):
    """update(learner_state, batch) -> (learner_state, UpdateMetrics): one gradient step."""
    loss_fn = make_loss(algo, networks)

    def update(state: LearnerState, batch: Episodes) -> tuple[LearnerState, UpdateMetrics]:
        grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params, state.target_params, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = metrics.replace(grad_norm=optax.tree.norm(grads))
        return LearnerState(params=params, target_params=state.target_params, opt_state=opt_state), metrics

    return update


def init_learner(params: Params, optimizer: optax.GradientTransformation) -> LearnerState:
    return LearnerState(params=params, target_params=jax.tree_util.tree_map(jnp.copy, params),
                        opt_state=optimizer.init(params))


def copy_targets(state: LearnerState) -> LearnerState:
    """Hard update: every target network becomes a copy of its online network."""
    return state.replace(target_params=state.params)
