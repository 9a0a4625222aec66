"""Qatten's factorisation (official `qatten_learner.py` with mixer "qatten"): Q_tot from the
multi-head attention mixer (`networks.AttentionMixer`) at the taken actions; the target is the
target mixer at u' (online u*(s') with double Q) over the target agents' utilities there. The
loss adds the attention regulariser attend_reg_coef * sum_h mean(logit_h^2) of the online mixer.

The regulariser's mean is the official one: over every row of the batch as pymarl lays it out (B
episodes times the longest episode's length, times the agents), where rows past an episode's
final observation hold zeros (and so, in the default options, zero logits). Packed batches are
refused for this reason (`train.packed_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from wqmix.agents import Networks, Params
from wqmix.config import QattenConfig
from wqmix.learner.pieces import Agents, Arrays, Bootstrap, Context, Mixed, Transitions, pick


def official_rows(filled: jax.Array) -> tuple[jax.Array, jax.Array]:
    """((T, B) bool, L_max): the rows of the official batch that hold data, and how many rows
    (transitions) it has. pymarl cuts a batch to its longest episode (L_max transitions) and keeps
    each episode's final observation in row L_b; rows t < min(L_b + 1, L_max) hold data, the
    rest zeros. filled (T, B) bool."""
    lengths = filled.sum(axis=0)  # (B,) transitions per episode
    t = jnp.arange(filled.shape[0])[:, None]
    return t < jnp.minimum(lengths + 1, lengths.max()), lengths.max()


@dataclass(frozen=True)
class AttentionMix:
    """Qatten: Q_tot = sum_h w_h(s) sum_i lambda_{h,i}(s, Q_i) Q_i + V(s)."""

    networks: Networks
    options: QattenConfig

    def init_carry(self) -> Arrays:
        return {}

    def mix(self, params: Params, agents: Agents, batch: Transitions, context: Context) -> Mixed:
        q_tot, logits, weights = self.networks.mixer.apply(params["mixer"], agents.chosen, batch.state[:-1],
                                                           batch.actions, with_attention=True)
        # logits, weights: (T, B, heads, agents). The regulariser's mean: over B * L_max * agents.
        rows, longest = official_rows(batch.filled)
        _, B, heads, n = logits.shape
        squares = jnp.sum(jnp.where(rows[..., None, None], jnp.square(logits), 0.0))  # summed over the heads too
        regulariser = self.options.attend_reg_coef * squares / jnp.maximum(B * longest * n, 1)
        entropy = -jnp.sum(jnp.log(weights + 1e-8) * weights, axis=-1)  # (T, B, heads)
        mask = batch.filled[..., None]
        entropy = jnp.sum(entropy * mask, axis=(0, 1)) / jnp.maximum(jnp.sum(mask), 1)
        metrics = {"attention_regulariser": regulariser, **{f"head_{h}_entropy": entropy[h] for h in range(heads)}}
        return Mixed(q_tot=q_tot, losses={"attention": regulariser}, metrics=metrics)

    def bootstrap(self, params: Params, target_params: Params, boot: Bootstrap, batch: Transitions, mixed: Mixed,
                  context: Context) -> jax.Array:
        # `target_mixer(target_max_qvals, state[:, 1:], target_next_actions)`: the target agents'
        # utilities at u', which `mask_dead` also reads.
        actions = boot.actions[1:]
        chosen = jnp.where(batch.alive[1:], pick(boot.utilities[1:], actions), 0.0)
        return jax.lax.stop_gradient(self.networks.mixer.apply(target_params["mixer"], chosen, batch.state[1:], actions))
