"""An independent, line-by-line port of the official Qatten learner (oxwhirl/wqmix
`src/learners/qatten_learner.py`, `QattenLearner.train` with mixer "qatten", and the mixer of
`src/modules/mixers/qatten.py`, `QattenMixer`), with the options of the QPLEX authors'
`qplex_qatten_sc2.yaml` as defaults (`QATTEN_SC2_OPTIONS`): n_head 4, attend_reg_coef 0.001,
state_bias True, mask_dead False, weighted_head False, nonlinear False, mixing_embed_dim 32,
hypernet_embed 64, hypernet_layers unset (so 1). `unit_dim` is the environment's: the first
unit_dim * n_agents state features are the agents' own, unit_dim each.

Written against the PyTorch code only, not against wqmix's learner or mixers; it reads wqmix's
parameter trees only to use the same weights (names in `random_qatten_params`). Like
`official_reference.py`, whose helpers it reuses, the same code runs with NumPy (float64: the
loss) and jax.numpy (float32, for `jax.grad`); `Ops` says which and how `.detach()` is done.

What the official code does that is easy to get wrong (all ported as it is):
- the target mixer's `actions` (read only with mask_dead) are `target_next_actions`, the online
  network's masked greedy actions at t + 1 (double_q; without it the target network's own);
- the loss adds `q_attend_regs` of the ONLINE mixer call only (the target call's is dropped):
  attend_reg_coef * sum over heads of the mean of the squared UNSCALED attention logits over
  all B x T rows, padding and rows after termination included (not masked, not divided by
  mask.sum()); with nonlinear the keys read the agents' utilities, so the regulariser reaches
  the agent network, padding rows included;
- with mask_dead the logits of agents whose action is 0 are set to -99999999 after scaling (a
  row where every agent's action is 0, e.g. padding, gets uniform weights);
- the agent network's last-action input is the batch's `actions_onehot`, which pymarl's OneHot
  preprocessing writes on filled rows only (zeros on padding). `official_reference.mac_out`
  one-hots `actions` everywhere instead; that changes only the utilities of padding rows, which
  no loss term reads except the nonlinear regulariser, so this port builds the inputs the
  pymarl way (`batch["actions_onehot"]` if given, else one-hot of `actions` times `filled`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from official_reference import Ops, TorchInit, gather, learner_inputs, port_gradients, relu, rnn_agent_forward

JAX_OPS = Ops(jnp, jax.lax.stop_gradient)

# qplex_qatten_sc2.yaml (the QPLEX authors' Qatten): everything but the environment's unit_dim.
QATTEN_SC2_OPTIONS = dict(n_head=4, embed_dim=32, attend_reg_coef=0.001, hypernet_layers=1, nonlinear=False,
                          weighted_head=False, state_bias=True, mask_dead=False)


def dense(ops, p, x):
    """nn.Linear, with or without bias: x @ kernel (+ bias)."""
    y = x @ ops.xp.asarray(p["kernel"])
    return y + ops.xp.asarray(p["bias"]) if "bias" in p else y


def softmax(ops, x, axis):
    """F.softmax: exp(x - max) / sum (the shift does not change the value or the gradient)."""
    xp = ops.xp
    e = xp.exp(x - ops.detach(xp.max(x, axis=axis, keepdims=True)))
    return e / xp.sum(e, axis=axis, keepdims=True)


# ---- the agents, with pymarl's last-action input ------------------------------------------------


def actions_onehot(batch, n_actions):
    """pymarl's `actions_onehot`: the batch's own if it has one, else OneHot(actions) on filled rows
    and zeros elsewhere (what the runner's `batch.update` over the filled rows leaves)."""
    if "actions_onehot" in batch:
        return np.asarray(batch["actions_onehot"])
    return np.eye(n_actions)[batch["actions"][..., 0]] * batch["filled"][..., None]


def build_inputs(ops, batch, onehot, t, n_agents):
    """`BasicMAC._build_inputs` (obs_last_action, obs_agent_id): obs, actions_onehot[:, t - 1]
    (zeros at t = 0), one-hot agent id."""
    xp = ops.xp
    B = batch["obs"].shape[0]
    last = np.zeros_like(onehot[:, 0]) if t == 0 else onehot[:, t - 1]
    parts = [xp.asarray(batch["obs"][:, t]), xp.asarray(last),
             xp.broadcast_to(xp.asarray(np.eye(n_agents)), (B, n_agents, n_agents))]
    return xp.concatenate([x.reshape(B * n_agents, -1) for x in parts], axis=1)


def mac_out(ops, agent_params, batch, n_agents, n_actions):
    """`mac.init_hidden(B); for t in range(batch.max_seq_length): mac.forward(batch, t=t)`,
    th.stack(dim=1): (B, T+1, n, |U|). RNNAgent as `official_reference.rnn_agent_forward`."""
    xp = ops.xp
    onehot = actions_onehot(batch, n_actions)
    B, T1 = batch["obs"].shape[:2]
    h = xp.zeros((B * n_agents, agent_params["params"]["gru_w_h"].shape[0]))
    outs = []
    for t in range(T1):
        q, h = rnn_agent_forward(ops, agent_params, build_inputs(ops, batch, onehot, t, n_agents), h)
        outs.append(q.reshape(B, n_agents, -1))
    return xp.stack(outs, axis=1)


# ---- the mixer ----------------------------------------------------------------------------------


def qatten_mixer(ops, p, agent_qs, states, actions, *, n_head, unit_dim, embed_dim, attend_reg_coef,
                 hypernet_layers=1, nonlinear=False, weighted_head=False, state_bias=True, mask_dead=False):
    """`QattenMixer.forward`. p = params["mixer"]; agent_qs (B, T, n), states (B, T, s),
    actions (B, T, n, 1) (read only with mask_dead) -> (q_tot (B, T, 1), attend_mag_regs,
    head_entropies (a list of n_head scalars))."""
    xp, hp = ops.xp, p["params"]
    bs = agent_qs.shape[0]
    n_agents = agent_qs.shape[-1]
    state_dim = states.shape[-1]
    states = states.reshape(-1, state_dim)
    unit_states = states[:, :unit_dim * n_agents]  # get agent own features from state
    unit_states = unit_states.reshape(-1, n_agents, unit_dim)
    unit_states = xp.transpose(unit_states, (1, 0, 2))  # (n, N, unit_dim)

    agent_qs = agent_qs.reshape(-1, 1, n_agents)  # agent_qs.view(-1, 1, self.n_agents)

    if nonlinear:
        unit_states = xp.concatenate([unit_states, xp.transpose(agent_qs, (2, 0, 1))], axis=2)

    def selector(h, x):  # selector_extractors[h]
        if hypernet_layers == 1:
            return dense(ops, hp[f"query_{h}_0"], x)  # Linear(state, embed, bias=False)
        if hypernet_layers == 2:  # Linear(state, hypernet_embed), ReLU, Linear(hypernet_embed, embed, bias=False)
            return dense(ops, hp[f"query_{h}_1"], relu(ops, dense(ops, hp[f"query_{h}_0"], x)))
        raise ValueError(f"hypernet_layers {hypernet_layers}")

    def hyper_w_head(x):
        if hypernet_layers == 1:
            return dense(ops, hp["w_head_0"], x)
        return dense(ops, hp["w_head_1"], relu(ops, dense(ops, hp["w_head_0"], x)))

    all_head_selectors = [selector(h, states) for h in range(n_head)]  # (head, N, embed)
    all_head_keys = [[dense(ops, hp[f"key_{h}"], enc) for enc in unit_states] for h in range(n_head)]
    # all_head_keys: (head, n, N, embed)

    head_qs, head_attend_logits, head_attend_weights = [], [], []
    for curr_head_keys, curr_head_selector in zip(all_head_keys, all_head_selectors):
        # th.matmul((N, 1, embed), th.stack(keys).permute(1, 2, 0) (N, embed, n)) -> (N, 1, n)
        attend_logits = curr_head_selector.reshape(-1, 1, embed_dim) @ xp.transpose(xp.stack(curr_head_keys), (1, 2, 0))
        scaled_attend_logits = attend_logits / np.sqrt(embed_dim)
        if mask_dead:
            actions = actions.reshape(-1, 1, n_agents)
            scaled_attend_logits = xp.where(xp.asarray(actions) == 0, -99999999.0, scaled_attend_logits)
        attend_weights = softmax(ops, scaled_attend_logits, axis=2)  # (N, 1, n)
        head_q = (agent_qs * attend_weights).sum(axis=2)  # (N, 1)
        head_qs.append(head_q)
        head_attend_logits.append(attend_logits)
        head_attend_weights.append(attend_weights)
    if state_bias:
        v = dense(ops, hp["v_1"], relu(ops, dense(ops, hp["v_0"], states))).reshape(-1, 1)  # V(states).view(-1, 1)
    if weighted_head:
        w_head = xp.abs(hyper_w_head(states)).reshape(-1, n_head, 1)  # (N, head, 1)
        y = xp.transpose(xp.stack(head_qs), (1, 0, 2))  # (N, head, 1)
        y = (w_head * y).sum(axis=1)  # (N, 1)
    else:
        y = xp.stack(head_qs).sum(axis=0)  # (N, 1)
    if state_bias:
        y = y + v
    q_tot = y.reshape(bs, -1, 1)
    # regularize magnitude of attention logits (the unscaled ones, a mean over every row)
    attend_mag_regs = attend_reg_coef * sum((logit ** 2).mean() for logit in head_attend_logits)
    head_entropies = [-(xp.log(probs + 1e-8) * probs)[:, 0].sum(axis=1).mean() for probs in head_attend_weights]
    return q_tot, attend_mag_regs, head_entropies


# ---- the learner's train ------------------------------------------------------------------------


def official_qatten_loss(ops: Ops, params, target_params, batch, gamma: float, n_agents: int, n_actions: int,
                         double_q: bool = True, **mixer_options) -> tuple[Any, dict[str, Any]]:
    """The loss `QattenLearner.train` back-propagates (mixer "qatten"), and its pieces.
    `batch`: pymarl's layout as `official_reference.random_episodes` returns it (T + 1 rows,
    optionally with `actions_onehot`); `mixer_options`: the keyword options of `qatten_mixer`."""
    xp, detach = ops.xp, ops.detach

    def mixer(p, qs, s, a):
        return qatten_mixer(ops, p, qs, s, a, **mixer_options)

    rewards, actions, terminated, mask, avail_actions = learner_inputs(xp, batch)
    states = xp.asarray(batch["state"])

    out = mac_out(ops, params["agent"], batch, n_agents, n_actions)
    chosen_action_qvals = gather(xp, out[:, :-1], actions)[..., 0]

    # x_mac_out[avail_actions == 0] = -9999999; max over dim 3 (for logging: hit_prob)
    x_mac_out = xp.where(avail_actions == 0, -9999999.0, detach(out))
    max_action_qvals = xp.max(x_mac_out[:, :-1], axis=3)
    max_action_index = xp.argmax(x_mac_out[:, :-1], axis=3)[..., None]
    is_max_action = (max_action_index == actions) * 1.0

    target_out = mac_out(ops, target_params["agent"], batch, n_agents, n_actions)
    target_mac_out = xp.where(avail_actions[:, 1:] == 0, -9999999.0, target_out[:, 1:])

    if double_q:
        mac_out_detach = xp.where(avail_actions == 0, -9999999.0, detach(out))
        cur_max_actions = xp.argmax(mac_out_detach[:, 1:], axis=3)[..., None]
        target_max_qvals = gather(xp, target_mac_out, cur_max_actions)[..., 0]
    else:
        target_max_qvals = xp.max(target_mac_out, axis=3)
        cur_max_actions = xp.argmax(target_mac_out, axis=3)[..., None]
    target_next_actions = cur_max_actions  # .detach(): integers

    chosen_action_qvals, q_attend_regs, head_entropies = mixer(params["mixer"], chosen_action_qvals,
                                                               states[:, :-1], actions)
    target_max_qvals, _, _ = mixer(target_params["mixer"], target_max_qvals, states[:, 1:], target_next_actions)

    targets = rewards + gamma * (1 - terminated) * target_max_qvals
    td_error = chosen_action_qvals - detach(targets)
    mask = xp.broadcast_to(mask, td_error.shape)  # mask.expand_as(td_error)
    masked_td_error = td_error * mask
    td_loss = (masked_td_error ** 2).sum() / mask.sum()
    loss = td_loss + q_attend_regs
    hit_prob = (xp.mean(is_max_action, axis=2) * mask).sum() / mask.sum()
    return loss, dict(td_loss=td_loss, q_attend_regs=q_attend_regs, head_entropies=head_entropies,
                      q_tot=chosen_action_qvals, targets=targets, mask=mask, hit_prob=hit_prob,
                      max_action_qvals=max_action_qvals, cur_max_actions=cur_max_actions[..., 0])


def official_gradients(params, target_params, batch, gamma, n_agents, n_actions, double_q=True, **mixer_options):
    """(loss in float64 with NumPy, gradients w.r.t. the whole `params` tree in float32 with
    jax.grad) of the official Qatten learner."""
    return port_gradients(lambda ops, p, q, b: official_qatten_loss(ops, p, q, b, gamma, n_agents, n_actions,
                                                                    double_q, **mixer_options),
                          params, target_params, batch)[:2]


# ---- random parameters in wqmix's tree layout ---------------------------------------------------


def random_qatten_params(rng: np.random.Generator, n_agents, n_actions, obs_dim, state_dim, hidden,
                         hypernet_embed=64, **mixer_options):
    """{"agent": {"params": ...}, "mixer": {"params": ...}} (float32 NumPy) at PyTorch's default
    initialisation, uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) (nn.GRUCell: 1/sqrt(hidden)), with the
    agents' fc2 kernel x 10 so that the values of different actions differ and argmaxes matter.
    `mixer_options` are `qatten_mixer`'s (those that shape no layer, attend_reg_coef and
    mask_dead, are ignored); hypernet_embed is the hidden width of hypernet_layers 2.

    Mixer layers: per head h the query `query_{h}_{j}`, j < hypernet_layers (the last without
    bias), the key `key_{h}` (no bias; input unit_dim, + 1 with nonlinear); `w_head_{j}`
    (weighted_head); `v_0`, `v_1` (state_bias)."""
    options = {**QATTEN_SC2_OPTIONS, **mixer_options}
    n_head, unit_dim, embed = options["n_head"], options["unit_dim"], options["embed_dim"]
    layers = options["hypernet_layers"]
    assert unit_dim * n_agents <= state_dim and layers in (1, 2)

    init = TorchInit(rng)
    linear = init.dense
    agent = init.rnn_agent(n_agents, n_actions, obs_dim, hidden)
    mixer = {}
    for h in range(n_head):
        if layers == 1:
            mixer[f"query_{h}_0"] = linear(state_dim, embed, bias=False)
        else:
            mixer[f"query_{h}_0"] = linear(state_dim, hypernet_embed)
            mixer[f"query_{h}_1"] = linear(hypernet_embed, embed, bias=False)
        mixer[f"key_{h}"] = linear(unit_dim + 1 if options["nonlinear"] else unit_dim, embed, bias=False)
    if options["weighted_head"]:
        if layers == 1:
            mixer["w_head_0"] = linear(state_dim, n_head)
        else:
            mixer["w_head_0"] = linear(state_dim, hypernet_embed)
            mixer["w_head_1"] = linear(hypernet_embed, n_head)
    if options["state_bias"]:
        mixer["v_0"] = linear(state_dim, embed)
        mixer["v_1"] = linear(embed, 1)
    return {"agent": {"params": agent}, "mixer": {"params": mixer}}
