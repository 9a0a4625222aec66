"""The projector write-up's additive "weighted projector" (`shared/seeds/000_571ff9a03b5a1893.txt`;
NOT the paper's algorithm), as a factorisation: Q_tot(s, u) = Q_mono(s, u) + sum_k omega_k Q_proj,k(s)
(or (s, u), its state-action extension), Q_mono the QMIX mixer, and in the target the same term at
s' from the ONLINE projector (the write-up's code keeps no target copy of it). Its options are `ProjectorConfig`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from wqmix import losses
from wqmix.action import masked_uniform
from wqmix.agents import Networks, Params, projector_inputs
from wqmix.config import ProjectorConfig
from wqmix.learner.pieces import Agents, Arrays, Bootstrap, Context, Mixed, Transitions, pick


def mixer_value(mix, utilities: jax.Array, avail: jax.Array, alive: jax.Array, state: jax.Array,
                samples: int, key: jax.Array | None) -> jax.Array:
    """V(s) = E_u[Q_mono(s, u)] for u uniform over the available joint actions (the write-up's
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
    chosen = jnp.where(alive, pick(utilities[None], joint), 0.0)
    values = mix(chosen, jnp.broadcast_to(state, (samples, *state.shape)))  # (K, T, B, 1)
    return values.mean(axis=0)


def projector_term(networks: Networks, projector: ProjectorConfig, params: Params, state: jax.Array,
                   actions: jax.Array, q_mono: jax.Array, value: jax.Array | None, abs_advantage: jax.Array,
                   steps: jax.Array | int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The write-up's additive term sum_k omega_k Q_proj,k (not the paper's), with its omega.

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


@dataclass(frozen=True)
class ProjectorMixer:
    """Q_tot = Q_mono + sum_k omega_k Q_proj,k. Keeps the running mean of |A| between updates
    (read by the advantage omega); logs mean |Q_mono|, |Q_proj|, omega and that running mean,
    what the write-up's section 8.2 tells users to watch."""

    networks: Networks
    projector: ProjectorConfig

    def init_carry(self) -> Arrays:
        return {"abs_advantage": jnp.zeros((), jnp.float32)}

    def _value_keys(self, context: Context) -> tuple[jax.Array | None, jax.Array | None]:
        """Keys of the sampled V(s) (online) and V(s') (target)."""
        return (None, None) if context.key is None else tuple(jax.random.split(context.key))

    def mix(self, params: Params, agents: Agents, batch: Transitions, context: Context) -> Mixed:
        p, state = self.projector, batch.state
        mask = batch.filled[..., None]  # (T, B, 1)
        q_mono = self.networks.mixer.apply(params["mixer"], agents.chosen, state[:-1])  # (T, B, 1)
        abs_advantage = jnp.asarray(context.carry["abs_advantage"], jnp.float32)
        value = None
        if p.omega == "advantage":  # V(s) of online Q_mono; |A| = |Q_mono - V| updates the running mean
            def mix_online(qs, s):
                return self.networks.mixer.apply(params["mixer"], qs, s)
            value = jax.lax.stop_gradient(mixer_value(mix_online, agents.utilities[:-1], batch.avail[:-1],
                                                      batch.alive[:-1], state[:-1], p.value_samples,
                                                      self._value_keys(context)[0]))
            batch_abs_advantage = losses.masked_mean(jnp.abs(jax.lax.stop_gradient(q_mono) - value), mask)
            abs_advantage = losses.running_mean(abs_advantage, batch_abs_advantage, p.advantage_rate,
                                                jnp.asarray(context.steps) == 0)
        term, omega, proj = projector_term(self.networks, p, params, state[:-1], batch.actions, q_mono, value,
                                           abs_advantage, context.steps)
        extra_losses = {}
        if p.l2 > 0:
            extra_losses["projector_l2"] = p.l2 * sum(jnp.sum(jnp.square(x))
                                                     for x in jax.tree_util.tree_leaves(params["projector"]))
        metrics = dict(
            q_mono_abs=losses.masked_mean(jnp.abs(q_mono), mask),
            q_proj_abs=losses.masked_mean(jnp.abs(proj).mean(-1, keepdims=True), mask),
            omega_mean=losses.masked_mean(jnp.broadcast_to(omega, proj.shape).mean(-1, keepdims=True), mask),
            abs_advantage=abs_advantage)
        return Mixed(q_tot=q_mono + term, losses=extra_losses, metrics=metrics,
                     carry={"abs_advantage": abs_advantage})

    def bootstrap(self, params: Params, target_params: Params, boot: Bootstrap, batch: Transitions, mixed: Mixed,
                  context: Context) -> jax.Array:
        """V(s') = Q_mono_target(s', u') + the ONLINE projector's term at s' and u', without
        gradient, as the write-up's code (`self.weighted_projector(next_states)` under
        `torch.no_grad()`)."""
        p, state = self.projector, batch.state
        next_v = None
        if p.omega == "advantage":  # V(s') of the target's Q_mono
            next_v = mixer_value(boot.mix, boot.utilities[1:], batch.avail[1:], batch.alive[1:], state[1:],
                                 p.value_samples, self._value_keys(context)[1])
        next_term, _, _ = projector_term(self.networks, p, params, state[1:], boot.actions[1:], boot.next_value,
                                         next_v, mixed.carry["abs_advantage"], context.steps)
        return jax.lax.stop_gradient(boot.next_value + next_term)
