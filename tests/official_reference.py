"""An independent, line-by-line port of the official learners' `train` (oxwhirl/wqmix
`src/learners/max_q_learner.py` for OW/CW-QMIX, `q_learner.py` for QMIX/VDN/IQL,
`q_learner_w.py` for the weighting ablation), written against the PyTorch code and not against
wqmix's learner: batch-major arrays with T + 1 rows as pymarl's `EpisodeBatch`, the agent network
stepped one time index at a time as `mac.forward(batch, t)`, `filled` and
`mask[:, 1:] *= 1 - terminated[:, :-1]`, unavailable actions set to -9999999 before the argmax,
"every agent greedy" as a min over agents.

It shares nothing with `wqmix.learner`, `wqmix.losses`, `wqmix.networks` or `wqmix.action`; it
reads wqmix's parameter trees only to use the same weights. The same code runs with NumPy
(float64: the loss) and with jax.numpy (float32, for `jax.grad`: the gradients); `Ops` says
which, and how `.detach()` is done.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np


class Ops(NamedTuple):
    xp: Any  # numpy or jax.numpy
    detach: Callable[[Any], Any]  # `.detach()`: identity for NumPy, stop_gradient for JAX


NUMPY = Ops(np, lambda x: x)


# ---- networks (PyTorch modules, as the official code defines them) -----------------------------


def linear(ops, p, x):
    return x @ ops.xp.asarray(p["kernel"]) + ops.xp.asarray(p["bias"])


def relu(ops, x):
    return ops.xp.maximum(x, 0.0)


def sigmoid(ops, x):
    return 1.0 / (1.0 + ops.xp.exp(-x))


def elu(ops, x):
    return ops.xp.where(x > 0, x, ops.xp.exp(ops.xp.minimum(x, 0.0)) - 1.0)


def rnn_agent_forward(ops, p, inputs, h):
    """`RNNAgent.forward`: fc1 -> ReLU -> nn.GRUCell -> fc2. inputs (N, in), h (N, H)."""
    xp, p = ops.xp, p["params"]
    x = relu(ops, linear(ops, p["fc1"], inputs))
    gi = x @ xp.asarray(p["gru_w_i"]) + xp.asarray(p["gru_b_i"])
    gh = h @ xp.asarray(p["gru_w_h"]) + xp.asarray(p["gru_b_h"])
    H = h.shape[-1]
    i_r, i_z, i_n = gi[:, :H], gi[:, H:2 * H], gi[:, 2 * H:]
    h_r, h_z, h_n = gh[:, :H], gh[:, H:2 * H], gh[:, 2 * H:]
    r = sigmoid(ops, i_r + h_r)
    z = sigmoid(ops, i_z + h_z)
    n = xp.tanh(i_n + r * h_n)
    h = (1.0 - z) * n + z * h
    return linear(ops, p["fc2"], h), h


def build_inputs(ops, batch, t, n_agents, n_actions):
    """`BasicMAC._build_inputs`: obs, one-hot last action (zeros at t = 0), one-hot agent id."""
    xp = ops.xp
    B = batch["obs"].shape[0]
    parts = [xp.asarray(batch["obs"][:, t])]
    if t == 0:
        parts.append(xp.zeros((B, n_agents, n_actions)))
    else:
        parts.append(xp.asarray(np.eye(n_actions)[batch["actions"][:, t - 1, :, 0]]))
    parts.append(xp.broadcast_to(xp.asarray(np.eye(n_agents)), (B, n_agents, n_agents)))
    return xp.concatenate(parts, axis=-1).reshape(B * n_agents, -1)


def mac_out(ops, agent_params, batch, n_agents, n_actions):
    """The loop `for t in range(batch.max_seq_length): mac.forward(batch, t=t)`, stacked on dim 1:
    (B, T+1, n, |U|)."""
    xp = ops.xp
    B, T1 = batch["obs"].shape[:2]
    H = agent_params["params"]["gru_w_h"].shape[0]
    h = xp.zeros((B * n_agents, H))  # init_hidden
    outs = []
    for t in range(T1):
        q, h = rnn_agent_forward(ops, agent_params, build_inputs(ops, batch, t, n_agents, n_actions), h)
        outs.append(q.reshape(B, n_agents, -1))
    return xp.stack(outs, axis=1)


def qmixer(ops, p, agent_qs, states):
    """`QMixer.forward` with hypernet_layers 2. agent_qs (B, T, n), states (B, T, s) -> (B, T, 1)."""
    xp, p = ops.xp, p["params"]
    B, T, n = agent_qs.shape
    s = states.reshape(-1, states.shape[-1])
    qs = agent_qs.reshape(-1, 1, n)
    w1 = xp.abs(linear(ops, p["hyper_w1_out"], relu(ops, linear(ops, p["hyper_w1"], s))))
    b1 = linear(ops, p["hyper_b1"], s)
    embed = b1.shape[-1]
    w1 = w1.reshape(-1, n, embed)
    b1 = b1.reshape(-1, 1, embed)
    hidden = elu(ops, qs @ w1 + b1)  # th.bmm
    w_final = xp.abs(linear(ops, p["hyper_w2_out"], relu(ops, linear(ops, p["hyper_w2"], s)))).reshape(-1, embed, 1)
    v = linear(ops, p["v_out"], relu(ops, linear(ops, p["v"], s))).reshape(-1, 1, 1)
    y = hidden @ w_final + v
    return y.reshape(B, -1, 1)


def vdn_mixer(ops, agent_qs, states):
    return ops.xp.sum(agent_qs, axis=2, keepdims=True)


def central_ff_mixer(ops, p, agent_qs, states):
    """`QMixerCentralFF.forward`: cat([states, agent_qs]) -> 3 x (Linear, ReLU) -> Linear, plus V(s)."""
    xp, p = ops.xp, p["params"]
    B, T, n = agent_qs.shape
    s = states.reshape(-1, states.shape[-1])
    x = xp.concatenate([s, agent_qs.reshape(-1, n)], axis=1)
    for name in ("fc1", "fc2", "fc3"):
        x = relu(ops, linear(ops, p[name], x))
    advs = linear(ops, p["out"], x)
    vs = linear(ops, p["v_out"], relu(ops, linear(ops, p["v"], s)))
    return (advs + vs).reshape(B, -1, 1)


def central_atten_mixer(ops, p, agent_qs, states, central_action_embed=1):
    """`QMixerCentralAtten.forward` (central_mixer "atten"): per head, a state-dependent softmax
    over the agents (atten_layer: Linear(state, hypernet_embed), ReLU, Linear(hypernet_embed,
    heads * n)) weights the utilities; the heads (heads = central_mixing_embed_dim, read from the
    params) go through net (3 Linear, ReLU between) and V(s) is added. agent_qs (B, T, n) ->
    (B, T, 1).

    Ported as it is, so that central_action_embed != 1 fails where the official code does: the
    reshape(-1, E, n) reads the gathered (.., n, E) utilities as (E, n) (a reshape, not a
    transpose: it interleaves agents and channels), the bmm gives (N, E, heads), reshape(-1, heads)
    makes each channel a row of its own, net gives (N * E, 1) and `advs + vs` with vs (N, 1) does
    not broadcast (N = B * T > 1)."""
    xp, p = ops.xp, p["params"]
    bs = agent_qs.shape[0]
    heads = p["net_0"]["kernel"].shape[0]  # self.heads = self.embed_dim = central_mixing_embed_dim
    n_agents = p["atten_1"]["kernel"].shape[1] // heads
    state_dim = states.shape[-1]
    states = states.reshape(-1, state_dim)
    agent_qs = agent_qs.reshape(-1, central_action_embed, n_agents)

    atten_output = linear(ops, p["atten_1"], relu(ops, linear(ops, p["atten_0"], states)))
    atten_output = atten_output.reshape(-1, n_agents, heads)
    e = xp.exp(atten_output - ops.detach(xp.max(atten_output, axis=1, keepdims=True)))  # .softmax(dim=1)
    atten_output = e / xp.sum(e, axis=1, keepdims=True)

    inputs = (agent_qs @ atten_output).reshape(-1, heads)  # th.bmm

    x = relu(ops, linear(ops, p["net_0"], inputs))
    x = relu(ops, linear(ops, p["net_1"], x))
    advs = linear(ops, p["net_2"], x)
    vs = linear(ops, p["v_1"], relu(ops, linear(ops, p["v_0"], states)))

    y = advs + vs
    return y.reshape(bs, -1, 1)


CENTRAL_MIXERS = {"ff": central_ff_mixer, "atten": central_atten_mixer}


def gather(xp, x, index):
    """th.gather(x, dim=3, index) with index (..., 1): (..., 1)."""
    return xp.take_along_axis(x, index, axis=3)


def masked_max_actions(xp, q, avail):
    """`q[avail == 0] = -9999999; q.max(dim=3, keepdim=True)[1]`."""
    q = xp.where(avail == 0, -9999999.0, q)
    return xp.argmax(q, axis=3)[..., None]


# ---- the learners' train ------------------------------------------------------------------------


def learner_inputs(xp, batch):
    """The lines every official learner's `train` starts with: rewards, actions, terminated,
    mask (`filled`, and `mask[:, 1:] *= 1 - terminated[:, :-1]`) and avail_actions, from pymarl's
    batch layout (T + 1 rows)."""
    rewards = xp.asarray(batch["reward"][:, :-1])
    actions = batch["actions"][:, :-1]
    terminated = xp.asarray(batch["terminated"][:, :-1].astype(np.float64))
    mask = batch["filled"][:, :-1].astype(np.float64)
    mask[:, 1:] = mask[:, 1:] * (1 - batch["terminated"][:, :-1].astype(np.float64)[:, :-1])
    return rewards, actions, terminated, xp.asarray(mask), batch["avail_actions"]


def pymarl_actions_onehot(batch, n_actions):
    """`batch["actions_onehot"]`: given, or the one-hot of `actions` on filled rows and zeros on
    padding, as pymarl's OneHot preprocessing leaves it."""
    if "actions_onehot" in batch:
        return batch["actions_onehot"]
    return np.eye(n_actions)[batch["actions"][..., 0]] * batch["filled"][..., None]


def official_loss(ops: Ops, algo: str, params, target_params, batch, gamma: float, w: float,
                  n_agents: int, n_actions: int, central_mixer: str = "ff") -> tuple[Any, dict[str, Any]]:
    """The loss that `train` back-propagates, and its pieces. `algo` is one of ow-qmix, cw-qmix
    (max_q_learner), qmix, vdn, iql (q_learner), ow-qmix-no-central and cw-qmix-no-central
    (q_learner_w with hysteretic_qmix true and false). `central_mixer` (ow-qmix, cw-qmix): "ff"
    (QMixerCentralFF, `central_ff_mixer`) or "atten" (QMixerCentralAtten, `central_atten_mixer`),
    both with central_action_embed 1."""
    xp, detach = ops.xp, ops.detach
    central_mixer_forward = CENTRAL_MIXERS[central_mixer]
    rewards, actions, terminated, mask, avail_actions = learner_inputs(xp, batch)
    states = xp.asarray(batch["state"])

    def mac(p):
        return mac_out(ops, p, batch, n_agents, n_actions)

    if algo in ("ow-qmix", "cw-qmix"):
        # max_q_learner.train
        out = mac(params["agent"])
        chosen_action_qvals = gather(xp, out[:, :-1], actions)[..., 0]
        target_mac_out = xp.where(avail_actions == 0, -9999999.0, mac(target_params["agent"]))
        cur_max_actions = masked_max_actions(xp, detach(out), avail_actions)
        central_out = mac(params["central_agent"])
        central_chosen = gather(xp, central_out[:, :-1], actions)[..., 0]
        central_target_out = xp.where(avail_actions == 0, -9999999.0, mac(target_params["central_agent"]))
        central_target_max_agent_qvals = gather(xp, central_target_out, cur_max_actions)[..., 0]
        del target_mac_out  # computed by the official code, never used for y
        chosen_action_qvals = qmixer(ops, params["mixer"], chosen_action_qvals, states[:, :-1])
        target_max_qvals = central_mixer_forward(ops, target_params["central_mixer"],
                                                 central_target_max_agent_qvals[:, 1:], states[:, 1:])
        targets = rewards + gamma * (1 - terminated) * target_max_qvals
        td_error = chosen_action_qvals - detach(targets)
        masked_td_error = td_error * mask
        central_q = central_mixer_forward(ops, params["central_mixer"], central_chosen, states[:, :-1])
        central_masked_td_error = (central_q - detach(targets)) * mask
        central_loss = (central_masked_td_error ** 2).sum() / mask.sum()
        ws = xp.ones_like(td_error) * w
        if algo == "ow-qmix":  # hysteretic_qmix
            ws = xp.where(td_error < 0, 1.0, ws)
        else:
            is_max_action = (actions == cur_max_actions[:, :-1]).min(axis=2)
            max_action_qtot = central_mixer_forward(ops, target_params["central_mixer"],
                                                    central_target_max_agent_qvals[:, :-1], states[:, :-1])
            qtot_larger = targets > max_action_qtot
            ws = xp.where(is_max_action | qtot_larger, 1.0, ws)
        qmix_loss = (detach(ws) * masked_td_error ** 2).sum() / mask.sum()
        loss = qmix_loss + central_loss
        return loss, dict(qmix_loss=qmix_loss, central_loss=central_loss, targets=targets, ws=ws, mask=mask)

    # q_learner.train (qmix, vdn, iql) and q_learner_w.train (the ablation)
    out = mac(params["agent"])
    chosen_action_qvals = gather(xp, out[:, :-1], actions)[..., 0]
    target_out = mac(target_params["agent"])
    target_mac_out = xp.where(avail_actions[:, 1:] == 0, -9999999.0, target_out[:, 1:])
    cur_max_actions = masked_max_actions(xp, detach(out), avail_actions)
    target_max_qvals = gather(xp, target_mac_out, cur_max_actions[:, 1:])[..., 0]
    if algo == "vdn":
        chosen_action_qvals = vdn_mixer(ops, chosen_action_qvals, None)
        target_max_qvals = vdn_mixer(ops, target_max_qvals, None)
    elif algo != "iql":
        chosen_action_qvals = qmixer(ops, params["mixer"], chosen_action_qvals, states[:, :-1])
        target_max_qvals = qmixer(ops, target_params["mixer"], target_max_qvals, states[:, 1:])
    targets = rewards + gamma * (1 - terminated) * target_max_qvals
    td_error = chosen_action_qvals - detach(targets)
    mask = xp.broadcast_to(mask, td_error.shape)  # mask.expand_as(td_error)
    masked_td_error = td_error * mask
    ws = xp.ones_like(td_error)
    if algo == "ow-qmix-no-central":  # q_learner_w, hysteretic_qmix: True
        ws = xp.where(td_error < 0, 1.0, xp.ones_like(td_error) * w)
    elif algo == "cw-qmix-no-central":  # q_learner_w, hysteretic_qmix: False
        is_max_action = (actions == cur_max_actions[:, :-1]).min(axis=2)
        target_max_agent_qvals = gather(xp, target_out[:, :-1], cur_max_actions[:, :-1])[..., 0]
        max_action_qtot = qmixer(ops, target_params["mixer"], target_max_agent_qvals, states[:, :-1])
        qtot_larger = targets > max_action_qtot
        ws = xp.where(is_max_action | qtot_larger, 1.0, xp.ones_like(td_error) * w)
    loss = (detach(ws) * masked_td_error ** 2).sum() / mask.sum()
    return loss, dict(qmix_loss=loss, central_loss=0.0 * loss, targets=targets, ws=ws, mask=mask)


# ---- what every port's test needs: gradients, random parameters ---------------------------------


def port_gradients(loss_of, params, target_params, batch):
    """(loss in float64 with NumPy, gradients w.r.t. `params` in float32 with jax.grad, the float64
    pieces) of a port's `loss_of(ops, params, target_params, batch) -> (loss, pieces)`: what
    wqmix's loss and gradients are compared against."""
    import jax  # the ports above need only NumPy
    import jax.numpy as jnp

    def as64(tree):
        return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), tree)

    def as32(tree):
        return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), tree)

    batch64 = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in batch.items()}
    loss, pieces = loss_of(NUMPY, as64(params), as64(target_params), batch64)
    target32 = as32(target_params)
    jax_ops = Ops(jnp, jax.lax.stop_gradient)
    grads = jax.jit(jax.grad(lambda p: loss_of(jax_ops, p, target32, batch)[0]))(as32(params))
    return float(loss), grads, pieces


class TorchInit:
    """Random float32 NumPy weights at PyTorch's default initialisation, uniform(-1/sqrt(fan_in),
    1/sqrt(fan_in)), drawn from `rng` in the order asked for."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def uniform(self, shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return self.rng.uniform(-bound, bound, size=shape).astype(np.float32)

    def dense(self, n_in, n_out, bias=True):
        """nn.Linear(n_in, n_out[, bias]) as {"kernel": (in, out)[, "bias": (out,)]}."""
        layer = {"kernel": self.uniform((n_in, n_out), n_in)}
        if bias:
            layer["bias"] = self.uniform((n_out,), n_in)
        return layer

    def rnn_agent(self, n_agents, n_actions, obs_dim, hidden):
        """`RNNAgent` (nn.GRUCell: 1/sqrt(hidden)) with its fc2 kernel x 10, so that the values of
        different actions differ and argmaxes matter."""
        agent = {"fc1": self.dense(obs_dim + n_actions + n_agents, hidden),
                 "gru_w_i": self.uniform((hidden, 3 * hidden), hidden),
                 "gru_b_i": self.uniform((3 * hidden,), hidden),
                 "gru_w_h": self.uniform((hidden, 3 * hidden), hidden),
                 "gru_b_h": self.uniform((3 * hidden,), hidden),
                 "fc2": self.dense(hidden, n_actions)}
        agent["fc2"]["kernel"] *= 10.0
        return agent


# ---- random episodes in both layouts ------------------------------------------------------------


def random_episodes(rng: np.random.Generator, B: int, T: int, n: int, obs_dim: int, state_dim: int,
                    n_actions: int):
    """B episodes of at most T steps with random observations, states, availability masks and
    available actions; some terminate early, some at T, some are cut by the time limit at T.

    Returns (ours, official): wqmix's `Episodes` fields (padding rows hold random garbage, as
    they may hold anything) and pymarl's `EpisodeBatch` fields (T + 1 rows, padding zeros,
    `filled` also on the row of the final observation)."""
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0], lengths[1] = T, T  # two episodes reach the time limit
    terminated_at_end = rng.random(B) < 0.6
    terminated_at_end[0], terminated_at_end[1] = True, False  # one ends for real at T, one is cut
    lengths[2], lengths[3] = 1, max(1, T // 2)  # and at least two terminate before T
    # An episode that stops before T has terminated: pymarl cuts episodes only at the time limit
    # (with an earlier cut its mask would take in the row after the final observation).
    terminated_at_end |= lengths < T

    obs = rng.normal(size=(B, T + 1, n, obs_dim)).astype(np.float32)
    state = rng.normal(size=(B, T + 1, state_dim)).astype(np.float32)
    avail = rng.random((B, T + 1, n, n_actions)) < 0.6
    avail[..., rng.integers(n_actions)] |= ~avail.any(axis=-1)  # at least one available
    actions = np.zeros((B, T, n), np.int32)
    for idx in np.ndindex(B, T, n):
        actions[idx] = rng.choice(np.flatnonzero(avail[idx[0], idx[1], idx[2]]))
    reward = rng.normal(size=(B, T)).astype(np.float32)
    terminated = np.zeros((B, T), bool)
    filled = np.arange(T)[None] < lengths[:, None]
    for b in range(B):
        terminated[b, lengths[b] - 1] = terminated_at_end[b]
    ours = dict(obs=obs, state=state, avail=avail, actions=actions, reward=reward, terminated=terminated,
                filled=filled, alive=np.ones((B, T + 1, n), bool))

    rows = np.arange(T + 1)[None] <= lengths[:, None]  # data rows: steps 0..L-1 and the final obs L
    official = dict(
        obs=np.where(rows[..., None, None], obs, 0.0),
        state=np.where(rows[..., None], state, 0.0),
        avail_actions=np.where(rows[..., None, None], avail, 0).astype(np.int64),
        actions=np.zeros((B, T + 1, n, 1), np.int64),
        reward=np.zeros((B, T + 1, 1)),
        terminated=np.zeros((B, T + 1, 1), np.int64),
        filled=rows[..., None].astype(np.int64),
    )
    for b in range(B):
        L = lengths[b]
        official["actions"][b, :L, :, 0] = actions[b, :L]
        official["reward"][b, :L, 0] = reward[b, :L]
        official["terminated"][b, L - 1, 0] = terminated[b, L - 1]
    return ours, official


# ---- comparing wqmix against a port -------------------------------------------------------------

TOLERANCE = 2e-5  # float32 against float64 (loss) and float32 sums in another order (gradients)


def disagreement(ref, mine) -> float:
    """Largest relative difference of the loss and of any gradient (relative to the largest
    gradient entry of its parameter). ref: (loss, grads, ...) of a port; mine: (loss, grads)."""
    import jax  # the ports above need only NumPy

    (ref_loss, ref_grads), (loss, grads) = ref[:2], mine
    worst = abs(loss - ref_loss) / max(abs(ref_loss), 1e-6)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(ref_grads)
    for g, r in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(ref_grads)):
        g, r = np.asarray(g, np.float64), np.asarray(r, np.float64)
        worst = max(worst, float(np.max(np.abs(g - r)) / max(np.max(np.abs(r)), 1e-6)))
    return worst
