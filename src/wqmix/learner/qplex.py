"""QPLEX's factorisation (official `dmaq_qatten_learner.py` with mixer "dmaq"): Q_tot = V_tot +
A_tot from the duplex dueling mixer (`networks.DuelingMixer`), the advantage read at each agent's
masked greedy utility; the target is the target mixer's at online QMIX-style u*(s') (double Q),
its advantage against the target agents' own masked max."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from wqmix.action import masked_greedy
from wqmix.agents import Networks, Params
from wqmix.learner.pieces import Agents, Arrays, Bootstrap, Context, Mixed, Transitions, pick


@dataclass(frozen=True)
class DuelingMix:
    """QPLEX: the mixer reads the taken joint action (one-hot) and each agent's greedy utility."""

    networks: Networks

    def init_carry(self) -> Arrays:
        return {}

    def _mixed(self, mixer_params, utilities: jax.Array, actions: jax.Array, greedy: jax.Array, alive: jax.Array,
               state: jax.Array) -> jax.Array:
        """The mixer at `actions` against the utilities' masked max at `greedy`. utilities
        (T, B, agents, |U|); actions, greedy (T, B, agents); alive (T, B, agents)."""
        chosen = jnp.where(alive, pick(utilities, actions), 0.0)
        max_q = jax.lax.stop_gradient(jnp.where(alive, pick(utilities, greedy), 0.0))
        one_hot = jax.nn.one_hot(actions, self.networks.num_actions, dtype=utilities.dtype)
        return self.networks.mixer.apply(mixer_params, chosen, state, one_hot, max_q)

    def mix(self, params: Params, agents: Agents, batch: Transitions, context: Context) -> Mixed:
        # `chosen_action_qvals` at the taken actions; `max_action_qvals`, detached, at u*(s).
        return Mixed(q_tot=self._mixed(params["mixer"], agents.utilities[:-1], batch.actions, agents.greedy[:-1],
                                       batch.alive[:-1], batch.state[:-1]))

    def bootstrap(self, params: Params, target_params: Params, boot: Bootstrap, batch: Transitions, mixed: Mixed,
                  context: Context) -> jax.Array:
        # The target mixer at u*(s') (`cur_max_actions`) against the target agents' own masked max.
        own_greedy = masked_greedy(boot.utilities[1:], batch.avail[1:])
        return jax.lax.stop_gradient(self._mixed(target_params["mixer"], boot.utilities[1:], boot.actions[1:],
                                                 own_greedy, batch.alive[1:], batch.state[1:]))
