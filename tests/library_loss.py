"""wqmix's side of the differential tests: its loss and gradients on the parameters and episodes a
port of an official learner is given (kept apart from the ports, which share nothing with wqmix)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from wqmix.buffer import Episodes
from wqmix.learner import make_loss


def loss_and_grads(algo, networks, params, target_params, batch_ours, pieces=None):
    """(loss, gradients w.r.t. `params`) of wqmix's loss for `algo` (with `pieces`, default the
    algorithm's own); `batch_ours`: wqmix's `Episodes` fields, as `random_episodes` gives them."""
    loss_fn = make_loss(algo, networks, pieces)
    batch = Episodes(**{k: jnp.asarray(v) for k, v in batch_ours.items()})
    params, target_params = (jax.tree_util.tree_map(jnp.asarray, tree) for tree in (params, target_params))
    (loss, _), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params, target_params, batch)
    return float(loss), grads
