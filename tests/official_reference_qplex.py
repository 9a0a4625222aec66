"""An independent, line-by-line port of the official QPLEX learner (oxwhirl/wqmix
`src/learners/dmaq_qatten_learner.py`, `DMAQ_qattenLearner.sub_train`, with the mixer of
`src/modules/mixers/dmaq_general.py` (`DMAQer`) and `dmaq_si_weight.py` (`DMAQ_SI_Weight`)), as
`src/config/algs/qplex.yaml` configures it: mixer "dmaq", double_q True, adv_hypernet_layers 3,
num_kernel 10, is_minus_one True, weighted_head True.

Written against the PyTorch code only, not against wqmix's learner or mixers; it reads wqmix's
parameter trees only to use the same weights (names in `random_qplex_params`). Like
`official_reference.py`, whose helpers it reuses, the same code runs with NumPy (float64: the
loss) and jax.numpy (float32, for `jax.grad`); `Ops` says which and how `.detach()` is done.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from official_reference import (Ops, TorchInit, gather, learner_inputs, linear, mac_out, port_gradients,
                                pymarl_actions_onehot, relu, sigmoid)

JAX_OPS = Ops(jnp, jax.lax.stop_gradient)


def sequential(ops, p, prefix, x, layers):
    """nn.Sequential of `layers` Linear layers named f"{prefix}_{j}" with ReLU between them
    (adv_hypernet_layers 1: Linear; 2: Linear, ReLU, Linear; 3: Linear, ReLU, Linear, ReLU, Linear)."""
    for j in range(layers):
        x = linear(ops, p[f"{prefix}_{j}"], x)
        if j < layers - 1:
            x = relu(ops, x)
    return x


# ---- the mixer ----------------------------------------------------------------------------------


def dmaq_si_weight(ops, p, states, actions_onehot, n_agents, num_kernel, layers):
    """`DMAQ_SI_Weight.forward`: states (..., s), actions_onehot (..., n, |U|) -> (N, n)."""
    xp, p = ops.xp, p["params"]
    state_dim = states.shape[-1]
    states = states.reshape(-1, state_dim)  # states.reshape(-1, self.state_dim)
    actions = actions_onehot.reshape(states.shape[0], -1)  # actions.reshape(-1, self.action_dim)
    data = xp.concatenate([states, actions], axis=1)  # th.cat([states, actions], dim=1)
    head_attend_weights = []
    for k in range(num_kernel):
        curr_head_key = sequential(ops, p, f"key_{k}", states, layers)  # k_ext(states)
        curr_head_agents = sequential(ops, p, f"agents_{k}", states, layers)  # k_ext(states)
        curr_head_action = sequential(ops, p, f"action_{k}", data, layers)  # sel_ext(data)
        x_key = xp.tile(xp.abs(curr_head_key), (1, n_agents)) + 1e-10  # .repeat(1, n_agents) + 1e-10
        x_agents = sigmoid(ops, curr_head_agents)
        x_action = sigmoid(ops, curr_head_action)
        head_attend_weights.append(x_key * x_agents * x_action)
    head_attend = xp.stack(head_attend_weights, axis=1).reshape(-1, num_kernel, n_agents)
    return xp.sum(head_attend, axis=1)


def dmaq_mixer(ops, p, agent_qs, states, actions_onehot=None, max_q_i=None, is_v=False, *,
               num_kernel=10, layers=3, is_minus_one=True, weighted_head=True):
    """`DMAQer.forward` (with `calc`, `calc_v`, `calc_adv`). p = params["mixer"];
    agent_qs (B, T, n), states (B, T, s), actions_onehot (B, T, n, |U|), max_q_i (B, T, n)
    -> (B, T, 1)."""
    xp, detach, hp = ops.xp, ops.detach, p["params"]
    bs, n_agents = agent_qs.shape[0], agent_qs.shape[-1]
    states = states.reshape(-1, states.shape[-1])
    agent_qs = agent_qs.reshape(-1, n_agents)

    # forward: w_final = |hyper_w_final(states)| + 1e-10; v = V(states)
    w_final = linear(ops, hp["w_final_1"], relu(ops, linear(ops, hp["w_final_0"], states)))
    w_final = xp.abs(w_final).reshape(-1, n_agents) + 1e-10
    v = linear(ops, hp["v_1"], relu(ops, linear(ops, hp["v_0"], states))).reshape(-1, n_agents)
    if weighted_head:
        agent_qs = w_final * agent_qs + v
    if not is_v:
        max_q_i = max_q_i.reshape(-1, n_agents)
        if weighted_head:
            max_q_i = w_final * max_q_i + v

    if is_v:  # calc_v
        y = xp.sum(agent_qs.reshape(-1, n_agents), axis=-1)
    else:  # calc_adv
        adv_q = detach((agent_qs - max_q_i).reshape(-1, n_agents))
        adv_w_final = dmaq_si_weight(ops, p, states, actions_onehot, n_agents, num_kernel, layers)
        adv_w_final = adv_w_final.reshape(-1, n_agents)
        if is_minus_one:
            y = xp.sum(adv_q * (adv_w_final - 1.0), axis=1)
        else:
            y = xp.sum(adv_q * adv_w_final, axis=1)
    return y.reshape(bs, -1, 1)  # v_tot = y.view(bs, -1, 1)


# ---- the learner's sub_train --------------------------------------------------------------------


def official_qplex_loss(ops: Ops, params, target_params, batch, gamma: float, n_agents: int, n_actions: int,
                        num_kernel: int = 10, layers: int = 3) -> tuple[Any, dict[str, Any]]:
    """The loss `DMAQ_qattenLearner.sub_train` back-propagates (mixer "dmaq", double_q True), and
    its pieces. `batch`: pymarl's layout as `official_reference.random_episodes` returns it
    (`actions_onehot`, if absent, is the one-hot of `actions` on filled rows, zeros elsewhere, as
    pymarl's OneHot preprocessing leaves it)."""
    xp, detach = ops.xp, ops.detach

    def mixer(p, *args, **kwargs):
        return dmaq_mixer(ops, p, *args, num_kernel=num_kernel, layers=layers, **kwargs)

    # rewards, actions, terminated, mask, avail_actions, actions_onehot
    rewards, actions, terminated, mask, avail_actions = learner_inputs(xp, batch)
    onehot = pymarl_actions_onehot(batch, n_actions)
    actions_onehot = xp.asarray(onehot[:, :-1])
    states = xp.asarray(batch["state"])

    # mac_out; chosen_action_qvals = th.gather(mac_out[:, :-1], dim=3, index=actions).squeeze(3)
    out = mac_out(ops, params["agent"], batch, n_agents, n_actions)
    chosen_action_qvals = gather(xp, out[:, :-1], actions)[..., 0]

    # x_mac_out = mac_out.clone().detach(); x_mac_out[avail_actions == 0] = -9999999;
    # max_action_qvals, max_action_index = x_mac_out[:, :-1].max(dim=3)
    x_mac_out = xp.where(avail_actions == 0, -9999999.0, detach(out))
    max_action_qvals = xp.max(x_mac_out[:, :-1], axis=3)
    max_action_index = xp.argmax(x_mac_out[:, :-1], axis=3)

    # target_mac_out = th.stack(target_mac_out[1:], dim=1); target_mac_out[avail_actions[:, 1:] == 0] = -9999999
    target_out = mac_out(ops, target_params["agent"], batch, n_agents, n_actions)
    target_mac_out = xp.where(avail_actions[:, 1:] == 0, -9999999.0, target_out[:, 1:])

    # double_q: cur_max_actions = mac_out_detach[:, 1:].max(dim=3, keepdim=True)[1]
    mac_out_detach = xp.where(avail_actions == 0, -9999999.0, detach(out))
    cur_max_actions = xp.argmax(mac_out_detach[:, 1:], axis=3)[..., None]
    target_chosen_qvals = gather(xp, target_mac_out, cur_max_actions)[..., 0]
    target_max_qvals = xp.max(target_mac_out, axis=3)
    cur_max_actions_onehot = (cur_max_actions == xp.arange(n_actions)) * 1.0  # zeros(...).scatter_(3, ., 1)

    # Mix: ans_chosen (is_v) + ans_adv (actions_onehot, max_q_i = max_action_qvals)
    ans_chosen = mixer(params["mixer"], chosen_action_qvals, states[:, :-1], is_v=True)
    ans_adv = mixer(params["mixer"], chosen_action_qvals, states[:, :-1], actions_onehot=actions_onehot,
                    max_q_i=max_action_qvals, is_v=False)
    chosen_action_qvals = ans_chosen + ans_adv

    # target_chosen (is_v) + target_adv (cur_max_actions_onehot, max_q_i = target_max_qvals)
    target_chosen = mixer(target_params["mixer"], target_chosen_qvals, states[:, 1:], is_v=True)
    target_adv = mixer(target_params["mixer"], target_chosen_qvals, states[:, 1:],
                       actions_onehot=cur_max_actions_onehot, max_q_i=target_max_qvals, is_v=False)
    target_max_qvals = target_chosen + target_adv

    # targets, td_error, mask.expand_as(td_error), masked_td_error, loss
    targets = rewards + gamma * (1 - terminated) * target_max_qvals
    td_error = chosen_action_qvals - detach(targets)
    mask = xp.broadcast_to(mask, td_error.shape)
    masked_td_error = td_error * mask
    loss = (masked_td_error ** 2).sum() / mask.sum()
    return loss, dict(targets=targets, mask=mask, q_tot=chosen_action_qvals, ans_adv=ans_adv,
                      target_adv=target_adv, max_action_qvals=max_action_qvals, max_action_index=max_action_index,
                      cur_max_actions=cur_max_actions[..., 0], target_max_actions=xp.argmax(target_mac_out, axis=3),
                      target_max_agent_qvals=xp.max(target_mac_out, axis=3))


def kernels_and_layers(mixer_params) -> tuple[int, int]:
    """(num_kernel, adv_hypernet_layers) read off the names "key_{k}_{j}" of a mixer tree."""
    names = [name.split("_") for name in mixer_params["params"] if name.startswith("key_")]
    return 1 + max(int(k) for _, k, _ in names), 1 + max(int(j) for _, _, j in names)


def official_gradients(params, target_params, batch, gamma, n_agents, n_actions):
    """(loss in float64 with NumPy, gradients w.r.t. `params` in float32 with jax.grad) of the
    official learner: what wqmix's qplex loss and gradients are compared against."""
    num_kernel, layers = kernels_and_layers(params["mixer"])
    return port_gradients(lambda ops, p, q, b: official_qplex_loss(ops, p, q, b, gamma, n_agents, n_actions,
                                                                   num_kernel, layers),
                          params, target_params, batch)[:2]


# ---- random parameters in wqmix's tree layout ---------------------------------------------------


def random_qplex_params(rng: np.random.Generator, n_agents, n_actions, obs_dim, state_dim, hidden,
                        hypernet_embed, adv_hypernet_embed, num_kernel, layers):
    """{"agent": {"params": ...}, "mixer": {"params": ...}} (float32 NumPy) at PyTorch's default
    initialisation, uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) (nn.GRUCell: 1/sqrt(hidden)), with the
    agents' fc2 kernel x 10 so that the values of different actions differ and argmaxes matter."""
    init = TorchInit(rng)
    dense = init.dense
    agent = init.rnn_agent(n_agents, n_actions, obs_dim, hidden)
    mixer = {"w_final_0": dense(state_dim, hypernet_embed), "w_final_1": dense(hypernet_embed, n_agents),
             "v_0": dense(state_dim, hypernet_embed), "v_1": dense(hypernet_embed, n_agents)}
    for k in range(num_kernel):
        for prefix, n_in, n_out in (("key", state_dim, 1), ("agents", state_dim, n_agents),
                                    ("action", state_dim + n_agents * n_actions, n_agents)):
            widths = [n_in] + [adv_hypernet_embed] * (layers - 1) + [n_out]
            for j in range(layers):
                mixer[f"{prefix}_{k}_{j}"] = dense(widths[j], widths[j + 1])
    return {"agent": {"params": agent}, "mixer": {"params": mixer}}
