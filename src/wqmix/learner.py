"""One update function for OW-QMIX, CW-QMIX, QMIX, VDN, IQL and the paper's ablation.

The algorithms differ in three pieces chosen from the config: the mixer (QMIX, VDN, none),
where the target comes from (the target central Q-hat* or the algorithm's own target
networks), and the weight of each squared TD error (none, OW, CW). Everything else is shared.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from wqmix import losses
from wqmix.action import masked_greedy, masked_uniform
from wqmix.agents import PROJECTOR_PARAMS, Networks, Params, agent_inputs, projector_inputs, unroll_agents
from wqmix.buffer import Episodes
from wqmix.config import AlgoConfig, OptimConfig, ProjectorConfig


@struct.dataclass
class LearnerState:
    params: Params
    target_params: Params
    opt_state: Any
    steps: jax.Array  # () int32: gradient updates so far (the omega anneal counts these)
    abs_advantage: jax.Array  # () float32: running mean of |A| (the seed's advantage omega)


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
    # The seed's projector (zero without one): what its section 8.2 tells users to watch.
    q_mono_abs: jax.Array  # mean |Q_mono(s, u)| over valid steps
    q_proj_abs: jax.Array  # mean |Q_proj,k| over valid steps and heads
    omega_mean: jax.Array  # mean omega_k over valid steps and heads
    abs_advantage: jax.Array  # the running mean of |A| after this update (advantage omega)


PROJECTOR_METRICS = ("q_mono_abs", "q_proj_abs", "omega_mean", "abs_advantage")
"""UpdateMetrics fields that only algorithms with a projector log."""


def make_optimizer(optim: OptimConfig, algo: AlgoConfig | None = None) -> optax.GradientTransformation:
    """Global-norm clipping over all parameters, PyTorch's coupled weight decay, then RMSprop
    (PyTorch semantics: eps outside the square root, no bias correction) or Adam. With the seed's
    projector learning rate (`algo.projector.lr`) its parameters get their own base optimiser."""

    def base(lr: float) -> optax.GradientTransformation:
        if optim.name == "rmsprop":
            return optax.rmsprop(lr, decay=optim.rmsprop_decay, eps=optim.eps, eps_in_sqrt=False)
        return optax.adam(lr, eps=optim.eps)

    steps = [optax.clip_by_global_norm(optim.grad_norm_clip)]
    if optim.weight_decay > 0:
        steps.append(optax.add_decayed_weights(optim.weight_decay))
    projector_lr = algo.projector.lr if algo is not None else None
    if projector_lr is None:
        steps.append(base(optim.lr))
    else:
        labels = lambda params: {k: "projector" if k in PROJECTOR_PARAMS else "main" for k in params}  # noqa: E731
        steps.append(optax.multi_transform({"main": base(optim.lr), "projector": base(projector_lr)}, labels))
    return optax.chain(*steps)


def _pick(q: jax.Array, actions: jax.Array) -> jax.Array:
    """q: (..., actions); actions: (...) int -> (...): the utility of the given action."""
    return jnp.take_along_axis(q, actions[..., None], axis=-1)[..., 0]


def time_major(batch: Episodes) -> Episodes:
    """Every field with its batch and time axes swapped: (T or T+1, B, ...)."""
    return jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), batch)


def stored_agent_inputs(networks: Networks, batch: Episodes, starts: jax.Array | None = None) -> jax.Array:
    """The agent networks' inputs at every stored step, as they were while acting: obs_t ‖
    one-hot u_{t-1} ‖ one-hot id. batch time-major; starts (T+1, B) bool or None: where
    episodes begin inside a packed row (no previous action there). Returns (T+1, B, agents, in)."""
    prev_actions = jnp.concatenate([jnp.full_like(batch.actions[:1], -1), batch.actions], axis=0)
    if starts is not None:
        prev_actions = jnp.where(starts[..., None], -1, prev_actions)
    return agent_inputs(networks, batch.obs, prev_actions)


def unroll_episodes(agent, params, inputs: jax.Array, starts: jax.Array | None = None) -> jax.Array:
    """Utilities of an agent network run over whole stored episodes from a zero hidden state
    (zeroed again where `starts`, (T+1, B) bool, marks a packed episode's first step).
    inputs (T+1, B, agents, in) -> (T+1, B, agents, actions)."""
    B, n = inputs.shape[1], inputs.shape[2]
    hidden = jnp.zeros((B, n, agent.hidden))
    return unroll_agents(agent, params, hidden, inputs, starts)[1]


def mixer_value(mix: Callable, utilities: jax.Array, avail: jax.Array, alive: jax.Array, state: jax.Array,
                samples: int, key: jax.Array | None) -> jax.Array:
    """V(s) = E_u[Q_mono(s, u)] for u uniform over the available joint actions (the seed's
    "V(s) = E_a[Q_mono(s, a)]"): exact when there are at most `samples` joint actions, else the
    mean over `samples` sampled ones. utilities, avail (T, B, agents, actions); alive
    (T, B, agents); state (T, B, s); mix(qs (..., agents), state (..., s)) -> (..., 1).
    Returns (T, B, 1)."""
    T, B, n, A = utilities.shape
    if A ** n <= samples:
        joint = np.stack(np.unravel_index(np.arange(A ** n), (A,) * n), axis=-1)  # (C, agents)
        agent = np.arange(n)[None]
        chosen = utilities[:, :, agent, joint]  # (T, B, C, agents)
        weight = jnp.prod(avail[:, :, agent, joint], axis=-1).astype(utilities.dtype)  # (T, B, C)
        chosen = jnp.where(alive[:, :, None], chosen, 0.0)
        values = mix(chosen, jnp.broadcast_to(state[:, :, None], (T, B, A ** n, state.shape[-1])))[..., 0]
        return (jnp.sum(weight * values, axis=-1) / jnp.sum(weight, axis=-1))[..., None]
    if key is None:
        raise ValueError("a sampled V(s) needs a key: pass one to the loss")
    joint = masked_uniform(key, jnp.broadcast_to(avail, (samples, *avail.shape)))  # (K, T, B, agents)
    chosen = jnp.where(alive, _pick(utilities[None], joint), 0.0)
    values = mix(chosen, jnp.broadcast_to(state, (samples, *state.shape)))  # (K, T, B, 1)
    return values.mean(axis=0)


def projector_term(networks: Networks, projector: ProjectorConfig, params: Params, state: jax.Array,
                   actions: jax.Array, q_mono: jax.Array, value: jax.Array | None, abs_advantage: jax.Array,
                   steps: jax.Array | int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The seed's additive term sum_k omega_k Q_proj,k (not the paper's), with its omega.

    state (..., s); actions (..., agents) (read by the state-action projector); q_mono (..., 1)
    and value V(s) (..., 1) (read by the advantage omega, a constant for the gradient; None
    otherwise). Returns (term (..., 1), omega (..., heads) or (), Q_proj (..., heads) clipped)."""
    proj = networks.projector.apply(params["projector"], projector_inputs(networks, state, actions))
    if projector.clip is not None:
        proj = jnp.clip(proj, -projector.clip, projector.clip)
    scale = projector.omega_value * losses.omega_anneal(steps, projector.omega_anneal_steps)
    if projector.omega == "advantage":
        omega = scale * jax.lax.stop_gradient(losses.advantage_omega(q_mono, value, abs_advantage))
    elif projector.omega == "learned":
        omega = scale * networks.omega.apply(params["omega"], state)
    else:
        omega = scale
    return jnp.sum(omega * proj, axis=-1, keepdims=True), omega, proj


def make_loss(algo: AlgoConfig, networks: Networks):
    """loss(params, target_params, batch, steps=0, abs_advantage=0, key=None, starts=None) ->
    (loss, UpdateMetrics without grad_norm). `steps` (updates so far) and `abs_advantage`
    (running mean of |A|) are the learner's state the seed's projector reads; `key` draws the
    sampled V(s); `starts` (B, T+1) bool marks where episodes begin in a batch from
    `buffer.pack` (None: one episode per row, from its first step)."""
    projector = algo.projector if algo.projector.kind != "none" else None

    def loss_fn(params: Params, target_params: Params, batch: Episodes, steps: jax.Array | int = 0,
                abs_advantage: jax.Array | float = 0.0, key: jax.Array | None = None,
                starts: jax.Array | None = None):
        tm = time_major(batch)
        starts = None if starts is None else jnp.swapaxes(starts, 0, 1)  # (T+1, B)
        state, avail, actions = tm.state, tm.avail, tm.actions  # (T+1, B, .), (T+1, B, agents, .), (T, B, agents)
        reward, terminated = tm.reward[..., None], tm.terminated[..., None]  # (T, B, 1)
        filled = tm.filled  # (T, B)
        alive = tm.alive  # (T+1, B, agents): departed agents' utilities are zeroed
        inputs = stored_agent_inputs(networks, tm, starts)

        # Online QMIX (or VDN / IQL) utilities; their greedy joint action u*(s) at every step.
        q = unroll_episodes(networks.agent, params["agent"], inputs, starts)
        greedy = masked_greedy(jax.lax.stop_gradient(q), avail)  # (T+1, B, agents)
        chosen = jnp.where(alive[:-1], _pick(q[:-1], actions), 0.0)  # (T, B, agents)
        q_mono = q_tot = networks.mixer.apply(params["mixer"], chosen, state[:-1])  # (T, B, heads)
        heads = q_tot.shape[-1]
        mask = jnp.broadcast_to(filled[..., None], q_tot.shape)
        if heads > 1:  # independent heads (IQL): a departed agent's head has no loss
            mask = mask & alive[:-1]

        # Target values V(s') = Q(s', u'(s')) from the target central Q-hat* (WQMIX) or from the
        # algorithm's own target networks (QMIX, VDN, IQL, ablation, the seed's projector), at
        # online QMIX's greedy action u* (double Q) or the target agents' own (the seed's code).
        # CW also needs Q-hat* at s.
        agent_key, mixer_key = ("central_agent", "central_mixer") if algo.central else ("agent", "mixer")
        target_q = unroll_episodes(getattr(networks, agent_key), target_params[agent_key], inputs, starts)
        target_actions = greedy if algo.central or algo.double_q else masked_greedy(target_q, avail)
        target_greedy_q = jnp.where(alive, _pick(target_q, target_actions), 0.0)  # (T+1, B, agents)
        target_mixer = functools.partial(getattr(networks, mixer_key).apply, target_params[mixer_key])
        if algo.weighting == "cw":
            target_greedy_value = target_mixer(target_greedy_q, state)  # (T+1, B, heads)
            next_value, current_greedy_value = target_greedy_value[1:], target_greedy_value[:-1]
        else:  # the mixer only where it is needed: s_1 .. s_T
            next_value = target_mixer(target_greedy_q[1:], state[1:])  # (T, B, heads)

        # The seed's projector (not the paper's): Q_tot = Q_mono + sum_k omega_k Q_proj,k, and the
        # same term at s' in the target.
        projector_metrics = dict.fromkeys(PROJECTOR_METRICS, jnp.zeros(()))
        new_abs_advantage = jnp.asarray(abs_advantage, jnp.float32)
        penalty = jnp.zeros(())
        if projector is not None:
            mix_online = functools.partial(networks.mixer.apply, params["mixer"])
            value = next_v = None
            if projector.omega == "advantage":  # V(s) of online Q_mono and V(s') of the target's
                v_key, v_next_key = (None, None) if key is None else tuple(jax.random.split(key))
                value = jax.lax.stop_gradient(mixer_value(mix_online, q[:-1], avail[:-1], alive[:-1], state[:-1],
                                                          projector.value_samples, v_key))
                next_v = mixer_value(target_mixer, target_q[1:], avail[1:], alive[1:], state[1:],
                                     projector.value_samples, v_next_key)
                batch_abs_advantage = losses.masked_mean(jnp.abs(jax.lax.stop_gradient(q_mono) - value), mask)
                new_abs_advantage = losses.running_mean(abs_advantage, batch_abs_advantage, projector.advantage_rate,
                                                        jnp.asarray(steps) == 0)
            term, omega, proj = projector_term(networks, projector, params, state[:-1], actions, q_mono, value,
                                               new_abs_advantage, steps)
            q_tot = q_mono + term
            # The target's projector term: the ONLINE projector (and omega net) at s' and u',
            # without gradient, as the seed's code (`self.weighted_projector(next_states)` under
            # `torch.no_grad()`); it keeps no target copy of the projector.
            next_term, _, _ = projector_term(networks, projector, params, state[1:], target_actions[1:], next_value,
                                             next_v, new_abs_advantage, steps)
            next_value = jax.lax.stop_gradient(next_value + next_term)
            if projector.l2 > 0:
                penalty = projector.l2 * sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(params["projector"]))
            projector_metrics = dict(
                q_mono_abs=losses.masked_mean(jnp.abs(q_mono), mask),
                q_proj_abs=losses.masked_mean(jnp.abs(proj).mean(-1, keepdims=True), mask),
                omega_mean=losses.masked_mean(jnp.broadcast_to(omega, proj.shape).mean(-1, keepdims=True), mask),
                abs_advantage=new_abs_advantage)

        # Targets y; a time-limit cut (last filled step, not terminated) bootstraps.
        truncated = losses.time_limit_cuts(filled, tm.terminated)[..., None]
        reward, terminated, truncated = (jnp.broadcast_to(x, (*x.shape[:-1], heads))
                                         for x in (reward, terminated, truncated))
        if algo.td_lambda > 0:
            y = losses.lambda_targets(reward, terminated, truncated, next_value, algo.gamma, algo.td_lambda)
        else:
            y = losses.one_step_targets(reward, terminated, next_value, algo.gamma)
        y = jax.lax.stop_gradient(y)

        # The weighting: the whole of Weighted QMIX's change to the QMIX loss.
        if algo.weighting == "ow":
            w = losses.ow_weights(q_tot, y, algo.alpha)
        elif algo.weighting == "cw":
            w = losses.cw_weights(actions, greedy[:-1], y[..., 0], current_greedy_value[..., 0], algo.alpha)[..., None]
        elif algo.weighting == "greedy-only":
            w = jnp.broadcast_to(losses.greedy_only_weights(actions, greedy[:-1])[..., None], y.shape)
        else:
            w = jnp.ones_like(y)
        w = jax.lax.stop_gradient(w)
        qmix_loss = losses.masked_weighted_mse(q_tot, y, w, mask)

        # Q-hat* itself learns the same targets, unweighted.
        central_loss = jnp.zeros(())
        if algo.central:
            # Over all T+1 steps, the last dropped: one step more than needed, but the inputs are
            # shared with the other networks instead of copied without their last step.
            central_q = unroll_episodes(networks.central_agent, params["central_agent"], inputs, starts)[:-1]
            central_chosen = jnp.where(alive[:-1], _pick(central_q, actions), 0.0)
            central_q_tot = networks.central_mixer.apply(params["central_mixer"], central_chosen, state[:-1])
            central_loss = losses.masked_weighted_mse(central_q_tot, y, jnp.ones_like(y), mask)

        loss = algo.qmix_loss_coef * qmix_loss + algo.central_loss_coef * central_loss + penalty
        metrics = UpdateMetrics(
            loss=loss,
            qmix_loss=qmix_loss,
            central_loss=central_loss,
            mean_weight=losses.masked_mean(w, mask),
            grad_norm=jnp.zeros(()),
            q_taken_mean=losses.masked_mean(q_tot, mask),
            target_mean=losses.masked_mean(y, mask),
            td_error_abs=losses.masked_mean(jnp.abs(q_tot - y), mask),
            **projector_metrics,
        )
        return loss, metrics

    return loss_fn


def make_update(algo: AlgoConfig, networks: Networks, optimizer: optax.GradientTransformation):
    """update(learner_state, batch, key=None, starts=None) -> (learner_state, UpdateMetrics): one
    gradient step, then (soft target updates) target <- tau * online + (1 - tau) * target. `key`
    is only read by the seed's sampled V(s); `starts` comes with a packed batch (`make_loss`)."""
    loss_fn = make_loss(algo, networks)

    def update(state: LearnerState, batch: Episodes, key: jax.Array | None = None,
               starts: jax.Array | None = None) -> tuple[LearnerState, UpdateMetrics]:
        grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params, state.target_params, batch, state.steps,
                                                         state.abs_advantage, key, starts)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        target_params = state.target_params
        if algo.target_update == "soft":
            target_params = optax.incremental_update(params, target_params, algo.tau)
        metrics = metrics.replace(grad_norm=optax.tree.norm(grads))
        return LearnerState(params=params, target_params=target_params, opt_state=opt_state, steps=state.steps + 1,
                            abs_advantage=metrics.abs_advantage), metrics

    return update


def init_learner(params: Params, optimizer: optax.GradientTransformation) -> LearnerState:
    return LearnerState(params=params, target_params=jax.tree_util.tree_map(jnp.copy, params),
                        opt_state=optimizer.init(params), steps=jnp.zeros((), jnp.int32),
                        abs_advantage=jnp.zeros((), jnp.float32))


def copy_targets(state: LearnerState) -> LearnerState:
    """Hard update: every target network becomes a copy of its online network."""
    return state.replace(target_params=state.params)
