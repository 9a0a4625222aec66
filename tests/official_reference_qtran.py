"""An independent, line-by-line port of the official QTRAN learner (oxwhirl/wqmix
`src/learners/qtran_learner.py`, `QLearner.train` with mixer "qtran_base", and the mixer
`QTranBase` of `src/modules/mixers/qtran.py`), as `src/config/algs/qtran.yaml` configures it:
qtran_arch "qtran_paper", mixing_embed_dim 64, network_size small, opt_loss 1, nopt_min_loss 0.1,
double_q True.

Written against the PyTorch code only, not against wqmix's learner or mixers; it reads wqmix's
parameter trees only to use the same weights (names in `random_qtran_params`). Like
`official_reference.py`, whose helpers it reuses, the same code runs with NumPy (float64: the
loss) and jax.numpy (float32, for `jax.grad`); `Ops` says which and how `.detach()` is done.

Points of the official code worth knowing:

- The mixer's Q(s, u) reads the agents' GRU outputs h_t (`mac.hidden_states` after
  `mac.forward(batch, t)`), which are not detached: the td loss (through `joint_qs`) sends
  gradient into the agent network through them, as the opt and nopt losses do through the
  agents' utilities. `max_joint_qs` (opt loss) and `joint_qs` (nopt loss) are detached there.
- `mac.hidden_states` is (B * n, H) with rows b * n + a; stacked on dim 1, reshaped to
  (B, n, T + 1, H) and transposed to (B, T + 1, n, H): the agents' rows stay in place.
- `max_actions_qvals` comes from the online `mac_out` (not detached) with unavailable actions at
  -9999999, so the opt loss back-propagates into the agents' greedy utilities.
- With double_q the target mixer scores the online greedy joint action of the next step (the
  one-hot of the argmax of the online agents); the target agents give only the hidden states.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from official_reference import (Ops, TorchInit, build_inputs, gather, learner_inputs, linear, port_gradients,
                                pymarl_actions_onehot, relu, rnn_agent_forward)

JAX_OPS = Ops(jnp, jax.lax.stop_gradient)

LAYERS = {"small": 3, "big": 4}  # Linear layers of Q and of V


def sequential(ops, p, prefix, x, layers):
    """nn.Sequential of `layers` Linear layers named f"{prefix}_{j}" with ReLU between them."""
    for j in range(layers):
        x = linear(ops, p[f"{prefix}_{j}"], x)
        if j < layers - 1:
            x = relu(ops, x)
    return x


# ---- the mixer ----------------------------------------------------------------------------------


def qtran_mixer(ops, p, states, hidden_states, actions_onehot, network_size="small"):
    """`QTranBase.forward` with qtran_arch "qtran_paper". p = params["mixer"];
    states (B, T, s), hidden_states (B, T, n, H), actions_onehot (B, T, n, |U|)
    -> (q_outputs (B * T, 1), v_outputs (B * T, 1))."""
    xp, p = ops.xp, p["params"]
    layers = LAYERS[network_size]
    state_dim = states.shape[-1]
    n_agents, n_actions = actions_onehot.shape[-2:]
    states = states.reshape(-1, state_dim)  # batch["state"].reshape(bs * ts, self.state_dim)
    N = states.shape[0]
    actions = actions_onehot.reshape(N, n_agents, n_actions)  # actions.reshape(bs * ts, n_agents, n_actions)
    hidden_states = hidden_states.reshape(N, n_agents, -1)  # hidden_states.reshape(bs * ts, self.n_agents, -1)
    agent_state_action_input = xp.concatenate([hidden_states, actions], axis=2)  # th.cat(..., dim=2)
    agent_state_action_encoding = sequential(  # self.action_encoding(....reshape(bs * ts * n_agents, -1))
        ops, p, "encoding", agent_state_action_input.reshape(N * n_agents, -1), 2).reshape(N, n_agents, -1)
    agent_state_action_encoding = agent_state_action_encoding.sum(axis=1)  # .sum(dim=1): across agents
    inputs = xp.concatenate([states, agent_state_action_encoding], axis=1)  # th.cat([states, enc], dim=1)
    q_outputs = sequential(ops, p, "q", inputs, layers)  # self.Q(inputs)
    v_outputs = sequential(ops, p, "v", states, layers)  # self.V(states)
    return q_outputs, v_outputs


# ---- the agents, with their hidden states -------------------------------------------------------


def mac_out_and_hidden(ops, agent_params, batch, n_agents, n_actions):
    """The learner's loop `for t in range(batch.max_seq_length): mac.forward(batch, t=t)`, keeping
    `mac.hidden_states` after each step: (mac_out (B, T+1, n, |U|), hidden states (B, T+1, n, H))."""
    xp = ops.xp
    B, T1 = batch["obs"].shape[:2]
    H = agent_params["params"]["gru_w_h"].shape[0]
    h = xp.zeros((B * n_agents, H))  # mac.init_hidden(batch.batch_size)
    mac_out, mac_hidden_states = [], []
    for t in range(T1):
        q, h = rnn_agent_forward(ops, agent_params, build_inputs(ops, batch, t, n_agents, n_actions), h)
        mac_out.append(q.reshape(B, n_agents, -1))  # agent_outs.view(ep_batch.batch_size, self.n_agents, -1)
        mac_hidden_states.append(h)  # self.mac.hidden_states: (B * n, H)
    mac_out = xp.stack(mac_out, axis=1)  # th.stack(mac_out, dim=1)
    mac_hidden_states = xp.stack(mac_hidden_states, axis=1)  # th.stack(mac_hidden_states, dim=1): (B * n, T+1, H)
    # .reshape(batch.batch_size, self.args.n_agents, batch.max_seq_length, -1).transpose(1,2) #btav
    mac_hidden_states = mac_hidden_states.reshape(B, n_agents, T1, -1).transpose(0, 2, 1, 3)
    return mac_out, mac_hidden_states


def one_hot(xp, index, n_actions):
    """th.zeros(size=(..., n_actions)).scatter(3, index, 1) with index (..., 1)."""
    return (index == xp.arange(n_actions)) * 1.0


# ---- the learner's train ------------------------------------------------------------------------


def official_qtran_loss(ops: Ops, params, target_params, batch, gamma: float, n_agents: int, n_actions: int,
                        opt_loss: float = 1.0, nopt_min_loss: float = 0.1, double_q: bool = True,
                        network_size: str = "small") -> tuple[Any, dict[str, Any]]:
    """The loss `QLearner.train` of qtran_learner.py back-propagates (mixer "qtran_base"), and its
    pieces. `batch`: pymarl's layout as `official_reference.random_episodes` returns it
    (`actions_onehot`, if absent, is the one-hot of `actions` on filled rows, zeros elsewhere, as
    pymarl's OneHot preprocessing leaves it). params = {"agent": ..., "mixer": ...}."""
    xp, detach = ops.xp, ops.detach

    def mixer(p, *args):
        return qtran_mixer(ops, p, *args, network_size=network_size)

    # rewards, actions, terminated, mask (mask[:, 1:] *= 1 - terminated[:, :-1]), avail_actions
    rewards, actions, terminated, mask, avail_actions = learner_inputs(xp, batch)
    onehot = pymarl_actions_onehot(batch, n_actions)
    actions_onehot = xp.asarray(onehot)
    states = xp.asarray(batch["state"])

    # Calculate estimated Q-Values (and the hidden states, #btav)
    mac_out, mac_hidden_states = mac_out_and_hidden(ops, params["agent"], batch, n_agents, n_actions)
    # chosen_action_qvals = th.gather(mac_out[:, :-1], dim=3, index=actions).squeeze(3)
    chosen_action_qvals = gather(xp, mac_out[:, :-1], actions)[..., 0]

    # The target agents: target_mac_out, target_mac_hidden_states
    target_mac_out, target_mac_hidden_states = mac_out_and_hidden(ops, target_params["agent"], batch, n_agents,
                                                                  n_actions)

    # target_mac_out[avail_actions[:, :] == 0] = -9999999
    target_mac_out = xp.where(avail_actions == 0, -9999999.0, target_mac_out)
    # mac_out_maxs = mac_out.clone(); mac_out_maxs[avail_actions == 0] = -9999999 (not detached)
    mac_out_maxs = xp.where(avail_actions == 0, -9999999.0, mac_out)

    # target_max_actions = target_mac_out.max(dim=3, keepdim=True)[1]
    target_max_actions = xp.argmax(detach(target_mac_out), axis=3)[..., None]
    # max_actions_qvals, max_actions_current = mac_out_maxs[:, :].max(dim=3, keepdim=True)
    max_actions_qvals = xp.max(mac_out_maxs, axis=3, keepdims=True)
    max_actions_current = xp.argmax(detach(mac_out_maxs), axis=3)[..., None]

    # -- TD Loss --
    # joint_qs, vs = self.mixer(batch[:, :-1], mac_hidden_states[:,:-1])  (actions: batch["actions_onehot"])
    joint_qs, vs = mixer(params["mixer"], states[:, :-1], mac_hidden_states[:, :-1], actions_onehot[:, :-1])

    max_actions_current_onehot = one_hot(xp, max_actions_current, n_actions)
    if double_q:
        max_actions_onehot = max_actions_current_onehot
    else:
        max_actions_onehot = one_hot(xp, target_max_actions, n_actions)
    # target_joint_qs, target_vs = self.target_mixer(batch[:, 1:], hidden_states=target_mac_hidden_states[:,1:],
    #                                                actions=max_actions_onehot[:,1:])
    target_joint_qs, _ = mixer(target_params["mixer"], states[:, 1:], target_mac_hidden_states[:, 1:],
                               max_actions_onehot[:, 1:])

    # td_targets = rewards.reshape(-1,1) + self.args.gamma * (1 - terminated.reshape(-1, 1)) * target_joint_qs
    td_targets = rewards.reshape(-1, 1) + gamma * (1 - terminated.reshape(-1, 1)) * target_joint_qs
    td_error = joint_qs - detach(td_targets)
    masked_td_error = td_error * mask.reshape(-1, 1)
    td_loss = (masked_td_error ** 2).sum() / mask.sum()

    # -- Opt Loss --
    # max_joint_qs, _ = self.mixer(batch[:, :-1], mac_hidden_states[:,:-1], actions=max_actions_current_onehot[:,:-1])
    max_joint_qs, _ = mixer(params["mixer"], states[:, :-1], mac_hidden_states[:, :-1],
                            max_actions_current_onehot[:, :-1])
    # opt_error = max_actions_qvals[:,:-1].sum(dim=2).reshape(-1, 1) - max_joint_qs.detach() + vs
    opt_error = max_actions_qvals[:, :-1].sum(axis=2).reshape(-1, 1) - detach(max_joint_qs) + vs
    masked_opt_error = opt_error * mask.reshape(-1, 1)
    opt_loss_value = (masked_opt_error ** 2).sum() / mask.sum()

    # -- Nopt Loss --
    # nopt_values = chosen_action_qvals.sum(dim=2).reshape(-1, 1) - joint_qs.detach() + vs
    nopt_values = chosen_action_qvals.sum(axis=2).reshape(-1, 1) - detach(joint_qs) + vs
    nopt_error = xp.minimum(nopt_values, 0.0)  # .clamp(max=0)
    masked_nopt_error = nopt_error * mask.reshape(-1, 1)
    nopt_loss = (masked_nopt_error ** 2).sum() / mask.sum()

    # loss = td_loss + self.args.opt_loss * opt_loss + self.args.nopt_min_loss * nopt_loss
    loss = td_loss + opt_loss * opt_loss_value + nopt_min_loss * nopt_loss
    return loss, dict(td_loss=td_loss, opt_loss=opt_loss_value, nopt_loss=nopt_loss, mask=mask,
                      joint_qs=joint_qs, vs=vs, target_joint_qs=target_joint_qs, td_targets=td_targets,
                      max_joint_qs=max_joint_qs, chosen_action_qvals=chosen_action_qvals,
                      max_actions_qvals=max_actions_qvals[..., 0], max_actions_current=max_actions_current[..., 0],
                      target_max_actions=target_max_actions[..., 0], mac_hidden_states=mac_hidden_states)


def network_size_of(mixer_params) -> str:
    """"big" if the mixer tree has a fourth Q layer `q_3`, else "small"."""
    return "big" if "q_3" in mixer_params["params"] else "small"


def official_gradients(params, target_params, batch, gamma, n_agents, n_actions, **options):
    """(loss in float64 with NumPy, gradients w.r.t. `params` (agent and mixer) in float32 with
    jax.grad, the float64 pieces: td_loss, opt_loss, nopt_loss) of the official learner.
    options: opt_loss, nopt_min_loss, double_q, network_size (default: read off the tree)."""
    options.setdefault("network_size", network_size_of(params["mixer"]))
    loss, grads, info = port_gradients(lambda ops, p, q, b: official_qtran_loss(ops, p, q, b, gamma, n_agents,
                                                                                n_actions, **options),
                                       params, target_params, batch)
    return loss, grads, {k: float(info[k]) for k in ("td_loss", "opt_loss", "nopt_loss")}


# ---- random parameters in wqmix's tree layout ---------------------------------------------------


def random_qtran_params(rng: np.random.Generator, n_agents, n_actions, obs_dim, state_dim, hidden, embed=64,
                        network_size="small"):
    """{"agent": {"params": ...}, "mixer": {"params": ...}} (float32 NumPy) at PyTorch's default
    initialisation, uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) (nn.GRUCell: 1/sqrt(hidden)), with the
    agents' fc2 kernel x 10 so that the values of different actions differ and argmaxes matter.

    Mixer layers (x @ kernel + bias, kernel = PyTorch weight transposed): `q_0`..`q_{L-1}` = Q's
    Linear layers, `v_0`..`v_{L-1}` = V's (L = 3 small, 4 big), `encoding_0`, `encoding_1` =
    action_encoding's."""
    init = TorchInit(rng)
    dense = init.dense
    agent = init.rnn_agent(n_agents, n_actions, obs_dim, hidden)
    layers = LAYERS[network_size]
    ae_input = hidden + n_actions
    mixer = {"encoding_0": dense(ae_input, ae_input), "encoding_1": dense(ae_input, ae_input)}
    for prefix, n_in in (("q", state_dim + ae_input), ("v", state_dim)):
        widths = [n_in] + [embed] * (layers - 1) + [1]
        for j in range(layers):
            mixer[f"{prefix}_{j}"] = dense(widths[j], widths[j + 1])
    return {"agent": {"params": agent}, "mixer": {"params": mixer}}
