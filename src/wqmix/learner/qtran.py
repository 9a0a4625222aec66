"""QTRAN-base's factorisation (official `qtran_learner.py` with mixer `qtran_base`, `qtran.yaml`):
Q_tot is the joint-action network's Q_jt(s, u), read from the agents' hidden states and actions
(`networks.JointActionNetwork`), learning the TD targets of its target copy at online u*(s')
(double Q); two extra losses tie the agents' utilities to it:

- L_opt = (sum_i Q_i(u*_i) - Q_jt(s, u*) + V_jt(s))^2, Q_jt a constant there;
- L_nopt = min(sum_i Q_i(u_i) - Q_jt(s, u) + V_jt(s), 0)^2 at the taken u, Q_jt a constant.

Each is a mean over real steps, and enters the loss times `opt_loss` and `nopt_min_loss`. The TD
loss also trains the agent networks, through the hidden states Q_jt reads (as in the official code,
where they are not detached).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from wqmix import losses
from wqmix.agents import Networks, Params
from wqmix.config import QtranConfig
from wqmix.learner.pieces import Agents, Arrays, Bootstrap, Context, Mixed, Transitions, pick


@dataclass(frozen=True)
class JointActionValue:
    """QTRAN: Q_tot = Q_jt(s, u) of the agents' hidden states and one-hot actions."""

    networks: Networks
    options: QtranConfig

    def init_carry(self) -> Arrays:
        return {}

    def _joint(self, mixer_params, state: jax.Array, hidden: jax.Array, actions: jax.Array):
        """(Q_jt, V_jt), each (T, B, 1), at joint actions (T, B, agents) int."""
        one_hot = jax.nn.one_hot(actions, self.networks.num_actions, dtype=hidden.dtype)
        return self.networks.mixer.apply(mixer_params, state, hidden, one_hot)

    def mix(self, params: Params, agents: Agents, batch: Transitions, context: Context) -> Mixed:
        state, hidden, greedy = batch.state[:-1], agents.hidden[:-1], agents.greedy[:-1]
        joint_q, v = self._joint(params["mixer"], state, hidden, batch.actions)  # `joint_qs, vs`
        max_joint_q = jax.lax.stop_gradient(self._joint(params["mixer"], state, hidden, greedy)[0])
        # sum_i max_u Q_i (with gradient; departed agents count 0, as in every other sum here)
        max_sum = jnp.where(batch.alive[:-1], pick(agents.utilities[:-1], greedy), 0.0).sum(-1, keepdims=True)
        chosen_sum = agents.chosen.sum(-1, keepdims=True)
        opt_error = max_sum - max_joint_q + v
        nopt_error = jnp.minimum(chosen_sum - jax.lax.stop_gradient(joint_q) + v, 0.0)
        mask = batch.filled[..., None]
        opt_loss = losses.masked_mean(jnp.square(opt_error), mask)
        nopt_loss = losses.masked_mean(jnp.square(nopt_error), mask)
        return Mixed(q_tot=joint_q,
                     losses={"opt": self.options.opt_loss * opt_loss, "nopt": self.options.nopt_min_loss * nopt_loss},
                     metrics={"opt_loss": opt_loss, "nopt_loss": nopt_loss, "v_mean": losses.masked_mean(v, mask)})

    def bootstrap(self, params: Params, target_params: Params, boot: Bootstrap, batch: Transitions, mixed: Mixed,
                  context: Context) -> jax.Array:
        # The target network at u' (online u*(s') with double Q) and the target agents' hidden states.
        next_q, _ = self._joint(target_params["mixer"], batch.state[1:], boot.hidden[1:], boot.actions[1:])
        return jax.lax.stop_gradient(next_q)
