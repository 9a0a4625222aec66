"""Networks: the shared agent RNN, the monotonic QMIX mixer, VDN, the unrestricted central
mixer of Q-hat*, and the seed document's projector heads and learned omega. Layer shapes follow the official code (`rnn_agent.py`, `qmix.py`,
`qmix_central_no_hyper.py`); every layer is initialised as PyTorch's default
(uniform in +-1/sqrt(fan_in)), as in the official code, so training dynamics match."""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp


def _uniform(bound: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)
    return init


class LinearWeights(nn.Module):
    """The kernel (in, features) and bias (features,) of a dense layer with PyTorch's default
    initialisation (uniform in +-1/sqrt(fan_in); source: the official code uses nn.Linear)."""

    in_features: int
    features: int

    @nn.compact
    def __call__(self) -> tuple[jax.Array, jax.Array]:
        bound = 1.0 / math.sqrt(self.in_features)
        kernel = self.param("kernel", _uniform(bound), (self.in_features, self.features))
        bias = self.param("bias", _uniform(bound), (self.features,))
        return kernel, bias


class Linear(nn.Module):
    """Dense layer with PyTorch's default initialisation (source: official code uses nn.Linear);
    `kernel_bound` replaces the kernel's bound (the seed's small-init trick)."""

    features: int
    kernel_bound: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        bound = 1.0 / math.sqrt(x.shape[-1])
        kernel_bound = bound if self.kernel_bound is None else self.kernel_bound
        kernel = self.param("kernel", _uniform(kernel_bound), (x.shape[-1], self.features))
        bias = self.param("bias", _uniform(bound), (self.features,))
        return x @ kernel + bias


class AgentRNN(nn.Module):
    """Per-agent utilities Q_i(tau_i, .): Linear(in -> H) -> ReLU -> GRU(H) -> Linear(H -> |U|).

    The input layer, ReLU and GRU run in `rnn_sequence`. The GRU is PyTorch's `GRUCell`:
    r = s(x W_ir + b_ir + h W_hr + b_hr), z = s(x W_iz + b_iz + h W_hz + b_hz),
    n = tanh(x W_in + b_in + r * (h W_hn + b_hn)), h' = (1 - z) * n + z * h.
    """

    hidden: int
    num_actions: int

    @nn.compact
    def __call__(self, h0: jax.Array, inputs: jax.Array, resets: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array]:
        """h0: (B, H); inputs: (T, B, in); resets (T, B) bool or None: where true the hidden
        state is zeroed before that step (a new episode starts there, in packed batches).
        Returns (h_T (B, H), q (T, B, |U|))."""
        H = self.hidden
        w_1, b_1 = LinearWeights(inputs.shape[-1], H, name="fc1")()
        bound = 1.0 / math.sqrt(H)
        w_i = self.param("gru_w_i", _uniform(bound), (H, 3 * H))  # columns: r | z | n
        b_i = self.param("gru_b_i", _uniform(bound), (3 * H,))
        w_h = self.param("gru_w_h", _uniform(bound), (H, 3 * H))
        b_h = self.param("gru_b_h", _uniform(bound), (3 * H,))
        keep = None if resets is None else (~resets)[..., None].astype(inputs.dtype)
        hs = rnn_sequence(h0, inputs, w_1, b_1, w_i, b_i, w_h, b_h, keep)
        w_2, b_2 = LinearWeights(H, self.num_actions, name="fc2")()
        return hs[-1], hs @ w_2 + b_2

    @staticmethod
    def rnn_weights(variables: Any) -> RNNWeights:
        """The input layer's and GRU's weights in `variables` (from `init`), as `rnn_sequences` reads them."""
        p = variables["params"]
        return RNNWeights(p["fc1"]["kernel"], p["fc1"]["bias"], p["gru_w_i"], p["gru_b_i"], p["gru_w_h"], p["gru_b_h"])

    @staticmethod
    def readout(variables: Any, hs: jax.Array) -> jax.Array:
        """Utilities (..., |U|) from hidden states hs (..., H): the output layer in `variables`."""
        fc2 = variables["params"]["fc2"]
        return hs @ fc2["kernel"] + fc2["bias"]


class MLPAgent(nn.Module):
    """The seed's feed-forward agent, `MLP(obs_dim, hidden_dim, action_dim)`: Linear(in -> H) ->
    ReLU -> Linear(H -> |U|) at every step, no memory (one hidden layer: ours, the literal
    reading). Same call as `AgentRNN`; the hidden state passes through unchanged."""

    hidden: int
    num_actions: int

    @nn.compact
    def __call__(self, h0: jax.Array, inputs: jax.Array, resets: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array]:
        """h0: (B, H); inputs: (T, B, in); resets unused (no memory). Returns (h0, q (T, B, |U|))."""
        del resets
        return h0, Linear(self.num_actions, name="fc2")(nn.relu(Linear(self.hidden, name="fc1")(inputs)))


AGENT_NETWORKS: dict[str, type[nn.Module]] = {"rnn": AgentRNN, "mlp": MLPAgent}


class PerAgent(nn.Module):
    """One agent network of `kind` per agent (no parameter sharing; the seed's code keeps a list
    `self.agent_networks`): parameters with a leading agent axis, applied with `nn.vmap`.
    h0: (B, agents, H); inputs: (T, B, agents, in). Returns (h (B, agents, H), q (T, B, agents, |U|))."""

    kind: str
    hidden: int
    num_actions: int

    @nn.compact
    def __call__(self, h0: jax.Array, inputs: jax.Array, resets: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array]:
        """resets (T, B) bool or None, shared by the agents."""
        per_agent = nn.vmap(AGENT_NETWORKS[self.kind], in_axes=(1, 2, None), out_axes=(1, 2),
                            variable_axes={"params": 0}, split_rngs={"params": True})
        return per_agent(hidden=self.hidden, num_actions=self.num_actions, name="agents")(h0, inputs, resets)


def _gru_input_projections(x: jax.Array, w_i: jax.Array, b_i: jax.Array) -> tuple[jax.Array, ...]:
    """x W_i + b_i for the r, z and n gates, as three (T, B, H) arrays: the scan body then reads
    each gate's input whole (measured 20% faster on CPU than slicing one (T, B, 3H) array)."""
    H = w_i.shape[1] // 3
    return tuple(x @ w_i[:, g * H:(g + 1) * H] + b_i[g * H:(g + 1) * H] for g in range(3))


def _gru_step(h: jax.Array, x_r: jax.Array, x_z: jax.Array, x_n: jax.Array, w_h: jax.Array,
              b_h: jax.Array) -> tuple[jax.Array, ...]:
    """One GRU step from the input projections: (h', r, z, n, h W_hn + b_hn)."""
    H = h.shape[-1]
    gh = h @ w_h + b_h  # (B, 3H)
    r = jax.nn.sigmoid(x_r + gh[..., :H])
    z = jax.nn.sigmoid(x_z + gh[..., H:2 * H])
    hn = gh[..., 2 * H:]
    n = jnp.tanh(x_n + r * hn)
    return (1.0 - z) * n + z * h, r, z, n, hn


class RNNWeights(NamedTuple):
    """The weights `rnn_sequences` reads for one agent RNN: w_1 (in, X), b_1 (X,) of the input
    layer; w_i (X, 3H), b_i (3H,), w_h (H, 3H), b_h (3H,) of the GRU, gate order r, z, n."""

    w_1: jax.Array
    b_1: jax.Array
    w_i: jax.Array
    b_i: jax.Array
    w_h: jax.Array
    b_h: jax.Array


def rnn_sequence(h0: jax.Array, inputs: jax.Array, w_1: jax.Array, b_1: jax.Array, w_i: jax.Array,
                 b_i: jax.Array, w_h: jax.Array, b_h: jax.Array, keep: jax.Array | None = None) -> jax.Array:
    """Hidden states h_1..h_T (T, B, H) of x_t = ReLU(inputs_t W_1 + b_1) fed to PyTorch's GRU
    from h0 (B, H): one network of `rnn_sequences`. inputs (T, B, in); w_1 (in, X); w_i (X, 3H),
    w_h (H, 3H) with gate order r, z, n. keep (T, B, 1) of 0/1 or None: step t starts from
    keep_t * h_{t-1} (0 where a new episode starts inside the sequence, in packed batches); None
    is all ones, without the multiply."""
    return rnn_sequences(inputs, (h0,), (RNNWeights(w_1, b_1, w_i, b_i, w_h, b_h),), keep=keep)[0][0]


@jax.custom_vjp
def rnn_sequences(inputs: jax.Array, h0s: tuple[jax.Array, ...], weights: tuple[RNNWeights, ...],
                  const_h0s: tuple[jax.Array, ...] = (), const_weights: tuple[RNNWeights, ...] = (),
                  keep: jax.Array | None = None) -> tuple[tuple[jax.Array, ...], tuple[jax.Array, ...]]:
    """Several agent RNNs (`rnn_sequence` each) over the same inputs in ONE time scan: the
    networks with `weights` from `h0s`, and those with `const_weights` from `const_h0s`, whose
    outputs are constants for the gradient (as under `jax.lax.stop_gradient`: the target
    networks). inputs (T, B, in), shared; keep (T, B, 1) or None, shared. Returns (hidden states
    (T, B, H_k) of each of `weights`, those of each of `const_weights`).

    Why one scan: on small batches (SMAX, MPE) each step of a scan costs more in dispatch than in
    arithmetic, so OW-QMIX's online, central and target agent networks stepped together cost
    little more than one of them (measured: `docs/performance.md`). The input layers run on the
    whole sequence at once, only the recurrences in the scan.

    The gradient is written by hand (`_rnn_backward`): one backward scan carries each network's
    dL/dh and accumulates its weight gradients step by step from the per-step slices it already
    reads, so nothing of size (T, B, .) is transposed or written back (measured ~20% faster than
    autodiff on predator-prey's update). Same maths as autodiff up to float rounding."""
    return _rnn_forward(inputs, h0s, weights, const_h0s, const_weights, keep, residuals=False)


def _rnn_forward(inputs, h0s, weights, const_h0s=(), const_weights=(), keep=None, residuals=True):
    nets, learned = (*weights, *const_weights), len(weights)
    xs = tuple(jax.nn.relu(inputs @ w.w_1 + w.b_1) for w in nets)  # each (T, B, X)
    projections = tuple(_gru_input_projections(x, w.w_i, w.b_i) for x, w in zip(xs, nets))
    if inputs.shape[0] == 1 and not residuals:  # one step (acting): no loop
        h0s = tuple(h0 if keep is None else keep[0] * h0 for h0 in (*h0s, *const_h0s))
        hs = tuple(_gru_step(h0, *(g[0] for g in p), w.w_h, w.b_h)[0][None] for h0, p, w in zip(h0s, projections, nets))
        return hs[:learned], hs[learned:]

    def cell(hs, per_step):
        x_t, keep_t = per_step
        outs = tuple(_gru_step(h if keep_t is None else keep_t * h, *x, w.w_h, w.b_h)
                     for h, x, w in zip(hs, x_t, nets))
        hs = tuple(out[0] for out in outs)
        # With residuals: everything the backward reads for the learned networks, h for the rest.
        return hs, (*outs[:learned], *hs[learned:]) if residuals else hs
    outs = jax.lax.scan(cell, (*h0s, *const_h0s), (projections, keep))[1]
    if not residuals:
        return outs[:learned], outs[learned:]
    saved = tuple((h0, x, *out, w.w_1, w.w_i, w.w_h) for h0, x, out, w in zip(h0s, xs, outs, weights))
    return ((tuple(out[0] for out in outs[:learned]), outs[learned:]),
            (inputs, keep, saved, const_h0s, const_weights))


def _rnn_backward(residuals, d_outputs):
    inputs, keep, saved, const_h0s, const_weights = residuals
    d_hs = d_outputs[0]  # the constant networks' cotangents are not followed
    per_net, transposed = [], []
    for h0, x, hs, r, z, n, hn, w_1, w_i, w_h in saved:
        h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)  # (T, B, H): h_{t-1}
        if keep is not None:  # what step t started from
            h_prev = keep * h_prev
        per_net.append((r, z, n, hn, h_prev, x))
        transposed.append((w_1.T, w_i.T, w_h.T))

    def step(carry, per_step):
        d_out_nets, nets, inputs, keep_t = per_step  # each (B, .)
        new_carry, bias_grads, d_inputs = [], [], []
        for (d_h_next, d_w_h, d_w_i, d_w_1), d_out, (r, z, n, hn, h_prev, x), (w_1_t, w_i_t, w_h_t) in zip(
                carry, d_out_nets, nets, transposed):
            d_h = d_h_next + d_out  # dL/dh_t from the outputs and from step t + 1
            d_z = d_h * (h_prev - n) * z * (1.0 - z)  # at the gates' pre-activations
            d_n = d_h * (1.0 - z) * (1.0 - n * n)
            d_r = d_n * hn * r * (1.0 - r)
            d_gh = jnp.concatenate([d_r, d_z, d_n * r], axis=-1)  # dL/d(h W_h + b_h), (B, 3H)
            d_gx = jnp.concatenate([d_r, d_z, d_n], axis=-1)  # dL/d(x W_i + b_i), (B, 3H)
            d_pre = (d_gx @ w_i_t) * (x > 0)  # dL/d(inputs W_1 + b_1), (B, X)
            d_h_prev = d_h * z + d_gh @ w_h_t  # dL/dh_{t-1}, through keep_t when there is one
            new_carry.append((d_h_prev if keep_t is None else keep_t * d_h_prev, d_w_h + h_prev.T @ d_gh,
                              d_w_i + x.T @ d_gx, d_w_1 + inputs.T @ d_pre))
            bias_grads.append((d_gh.sum(axis=0), d_gx.sum(axis=0), d_pre.sum(axis=0)))
            d_inputs.append(d_pre @ w_1_t)
        return tuple(new_carry), (tuple(bias_grads), functools.reduce(jnp.add, d_inputs))

    zeros = tuple((jnp.zeros_like(s[0]), jnp.zeros_like(s[9]), jnp.zeros_like(s[8]), jnp.zeros_like(s[7]))
                  for s in saved)
    carry, (bias_grads, d_inputs) = jax.lax.scan(step, zeros, (d_hs, tuple(per_net), inputs, keep), reverse=True)
    d_h0s = tuple(c[0] for c in carry)
    d_weights = tuple(RNNWeights(w_1=d_w_1, b_1=d_b_1.sum(axis=0), w_i=d_w_i, b_i=d_b_i.sum(axis=0), w_h=d_w_h,
                                 b_h=d_b_h.sum(axis=0))
                      for (_, d_w_h, d_w_i, d_w_1), (d_b_h, d_b_i, d_b_1) in zip(carry, bias_grads))
    d_keep = None if keep is None else jnp.zeros_like(keep)  # resets are data, not parameters
    zeros_like = functools.partial(jax.tree_util.tree_map, jnp.zeros_like)
    return d_inputs, d_h0s, d_weights, zeros_like(const_h0s), zeros_like(const_weights), d_keep


rnn_sequences.defvjp(_rnn_forward, _rnn_backward)


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


class Projector(nn.Module):
    """The seed's weighted projector as an ensemble of `heads` MLPs, each
    Linear(in -> hidden) -> [LayerNorm] -> ReLU -> Linear(-> 1) (seed, section 4: `nn.Sequential(
    nn.Linear(state_dim, mixing_hidden_dim), nn.ReLU(), nn.Linear(mixing_hidden_dim, 1))`).
    The input is s, or s || one-hot joint action for the state-action extension. Not the paper's.
    `last_layer_bound`: the seed's trick 1 (`nn.init.uniform_(last.weight, -3e-3, 3e-3)`;
    the bias keeps PyTorch's default, as there)."""

    hidden: int
    heads: int = 1
    layer_norm: bool = False
    last_layer_bound: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (..., in). Returns (..., heads)."""
        outs = []
        for k in range(self.heads):
            h = Linear(self.hidden, name=f"head{k}_fc1")(x)
            if self.layer_norm:
                h = nn.LayerNorm(name=f"head{k}_norm")(h)
            outs.append(Linear(1, kernel_bound=self.last_layer_bound, name=f"head{k}_out")(nn.relu(h)))
        return jnp.concatenate(outs, axis=-1)


class OmegaNet(nn.Module):
    """The seed's learned omega (extension 9.2, `sigmoid(self.omega_net(state))`), one per
    projector head: sigmoid(Linear(s -> hidden) -> ReLU -> Linear(-> heads)), in (0, 1)."""

    hidden: int
    heads: int = 1

    @nn.compact
    def __call__(self, state: jax.Array) -> jax.Array:
        """state: (..., s). Returns (..., heads)."""
        return jax.nn.sigmoid(Linear(self.heads, name="out")(nn.relu(Linear(self.hidden, name="fc1")(state))))
