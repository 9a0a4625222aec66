"""Networks: the shared agent RNN, the monotonic QMIX mixer, VDN, and the unrestricted central
mixer of Q-hat*. Layer shapes follow the official code (`rnn_agent.py`, `qmix.py`,
`qmix_central_no_hyper.py`); every layer is initialised as PyTorch's default
(uniform in +-1/sqrt(fan_in)), as in the official code, so training dynamics match."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def _uniform(bound: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)
    return init


class Linear(nn.Module):
    """Dense layer with PyTorch's default initialisation (source: official code uses nn.Linear)."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        bound = 1.0 / math.sqrt(x.shape[-1])
        kernel = self.param("kernel", _uniform(bound), (x.shape[-1], self.features))
        bias = self.param("bias", _uniform(bound), (self.features,))
        return x @ kernel + bias


class AgentRNN(nn.Module):
    """Per-agent utilities Q_i(tau_i, .): Linear(in -> H) -> ReLU -> GRU(H) -> Linear(H -> |U|).

    The input layer and the GRU's input projections run on the whole sequence at once; only the
    recurrent part runs inside the time scan. The GRU is PyTorch's `GRUCell`:
    r = s(x W_ir + b_ir + h W_hr + b_hr), z = s(x W_iz + b_iz + h W_hz + b_hz),
    n = tanh(x W_in + b_in + r * (h W_hn + b_hn)), h' = (1 - z) * n + z * h.
    """

    hidden: int
    num_actions: int

    @nn.compact
    def __call__(self, h0: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """h0: (B, H); inputs: (T, B, in). Returns (h_T (B, H), q (T, B, |U|))."""
        H = self.hidden
        x = nn.relu(Linear(H, name="fc1")(inputs))
        bound = 1.0 / math.sqrt(H)
        w_i = self.param("gru_w_i", _uniform(bound), (H, 3 * H))
        b_i = self.param("gru_b_i", _uniform(bound), (3 * H,))
        w_h = self.param("gru_w_h", _uniform(bound), (H, 3 * H))
        b_h = self.param("gru_b_h", _uniform(bound), (3 * H,))
        gates_x = x @ w_i + b_i  # (T, B, 3H), outside the scan

        def cell(h, gx):
            gh = h @ w_h + b_h
            r = jax.nn.sigmoid(gx[..., :H] + gh[..., :H])
            z = jax.nn.sigmoid(gx[..., H:2 * H] + gh[..., H:2 * H])
            n = jnp.tanh(gx[..., 2 * H:] + r * gh[..., 2 * H:])
            h = (1.0 - z) * n + z * h
            return h, h

        h_last, hs = jax.lax.scan(cell, h0, gates_x)
        return h_last, Linear(self.num_actions, name="fc2")(hs)


class QMixer(nn.Module):
    """Monotonic mixer: Q_tot = ELU(q . |W1(s)| + b1(s)) . |W2(s)| + V(s).

    W1: s -> hypernet_embed -> ReLU -> n*embed; W2: s -> hypernet_embed -> ReLU -> embed;
    b1: s -> embed; V: s -> embed -> ReLU -> 1 (official `QMixer`, hypernet_layers 2).
    The absolute values make dQ_tot/dQ_i >= 0.
    """

    embed: int
    hypernet_embed: int

    @nn.compact
    def __call__(self, agent_qs: jax.Array, state: jax.Array) -> jax.Array:
        """agent_qs: (..., n); state: (..., s). Returns (..., 1)."""
        n, E = agent_qs.shape[-1], self.embed
        w1 = jnp.abs(Linear(n * E, name="hyper_w1_out")(nn.relu(Linear(self.hypernet_embed, name="hyper_w1")(state))))
        w1 = w1.reshape(*w1.shape[:-1], n, E)
        b1 = Linear(E, name="hyper_b1")(state)
        hidden = nn.elu(jnp.einsum("...n,...ne->...e", agent_qs, w1) + b1)
        w2 = jnp.abs(Linear(E, name="hyper_w2_out")(nn.relu(Linear(self.hypernet_embed, name="hyper_w2")(state))))
        v = Linear(1, name="v_out")(nn.relu(Linear(E, name="v")(state)))
        return jnp.sum(hidden * w2, axis=-1, keepdims=True) + v


class VDNMixer(nn.Module):
    """Q_tot = sum_i Q_i (no parameters)."""

    @nn.compact
    def __call__(self, agent_qs: jax.Array, state: jax.Array) -> jax.Array:
        del state
        return jnp.sum(agent_qs, axis=-1, keepdims=True)


class IndependentHeads(nn.Module):
    """No mixing (IQL): each agent's utility is its own head. Returns (..., n)."""

    @nn.compact
    def __call__(self, agent_qs: jax.Array, state: jax.Array) -> jax.Array:
        del state
        return agent_qs


class CentralMixer(nn.Module):
    """The unrestricted central Q-hat*: [s || q_1..q_n] -> 256 -> ReLU -> 256 -> ReLU -> 256 ->
    ReLU -> 1, plus V(s): s -> 256 -> ReLU -> 1 (official `QMixerCentralFF`). Not monotonic."""

    hidden: int

    @nn.compact
    def __call__(self, agent_qs: jax.Array, state: jax.Array) -> jax.Array:
        """agent_qs: (..., n); state: (..., s). Returns (..., 1)."""
        x = jnp.concatenate([state, agent_qs], axis=-1)
        for i in range(3):
            x = nn.relu(Linear(self.hidden, name=f"fc{i + 1}")(x))
        advantage = Linear(1, name="out")(x)
        v = Linear(1, name="v_out")(nn.relu(Linear(self.hidden, name="v")(state)))
        return advantage + v
