"""Networks: shapes, the GRU recurrence against PyTorch's GRUCell equations, monotonicity of the
QMIX mixer (and its absence in the central mixer), VDN, PyTorch-default init, agent inputs and
the parameter sets of each algorithm."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wqmix.agents import agent_inputs, init_params, make_networks, unroll_agents
from wqmix.config import ALGORITHMS, NetworkConfig
from wqmix.envs.matrix_game import MatrixGame
from wqmix.networks import AgentRNN, CentralMixer, IndependentHeads, Linear, QMixer, VDNMixer, rnn_sequence

# --------------------------------------------------------------------------------------------
# Shapes


def test_agent_rnn_shapes():
    B, T, H, A, in_dim = 3, 4, 8, 5, 6
    rnn = AgentRNN(hidden=H, num_actions=A)
    params = jax.eval_shape(rnn.init, jax.random.key(0), jnp.zeros((B, H)), jnp.zeros((T, B, in_dim)))
    h, q = jax.eval_shape(rnn.apply, params, jnp.zeros((B, H)), jnp.ones((T, B, in_dim)))
    assert h.shape == (B, H)
    assert q.shape == (T, B, A)


@pytest.mark.parametrize("lead", [(4,), (3, 2), (2, 3, 2)])
@pytest.mark.parametrize("kind", ["qmix", "vdn", "none", "central"])
def test_mixer_output_shapes(kind, lead):
    n, s = 3, 4
    module = {
        "qmix": QMixer(embed=8, hypernet_embed=16),
        "vdn": VDNMixer(),
        "none": IndependentHeads(),
        "central": CentralMixer(hidden=16),
    }[kind]
    qs = jnp.zeros((*lead, n))
    state = jnp.zeros((*lead, s))
    params = jax.eval_shape(module.init, jax.random.key(0), qs, state)
    out = jax.eval_shape(module.apply, params, qs, state)
    expected_last = n if kind == "none" else 1
    assert out.shape == (*lead, expected_last)


def test_unroll_agents_shapes_and_agents_share_network():
    B, T, n, H, A, in_dim = 2, 3, 4, 8, 5, 6
    rnn = AgentRNN(hidden=H, num_actions=A)
    params = jax.jit(rnn.init)(jax.random.key(0), jnp.zeros((1, H)), jnp.zeros((1, 1, in_dim)))
    inputs = jax.random.normal(jax.random.key(1), (T, B, n, in_dim))
    h, q = jax.jit(lambda p, h0, x: unroll_agents(rnn, p, h0, x))(params, jnp.zeros((B, n, H)), inputs)
    assert h.shape == (B, n, H)
    assert q.shape == (T, B, n, A)
    # Agent j of batch b equals running the RNN on that single sequence.
    _, q_single = jax.jit(rnn.apply)(params, jnp.zeros((1, H)), inputs[:, 1, 2][:, None])
    np.testing.assert_allclose(np.asarray(q[:, 1, 2]), np.asarray(q_single[:, 0]), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# GRU recurrence against PyTorch's GRUCell equations


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _reference_agent_rnn(p, h0, inputs):
    """Per-sample numpy reference: fc1 -> ReLU -> torch.nn.GRUCell -> fc2.

    torch.nn.GRUCell stores weight_ih (3H, in) as [W_ir; W_iz; W_in] and weight_hh likewise;
    here the flax kernels are (in, 3H), i.e. the transposes, with the same gate order r, z, n.
    """
    H = h0.shape[-1]
    w_i, b_i = p["gru_w_i"].T.astype(np.float64), p["gru_b_i"].astype(np.float64)  # (3H, H)
    w_h, b_h = p["gru_w_h"].T.astype(np.float64), p["gru_b_h"].astype(np.float64)
    W_ir, W_iz, W_in = w_i[:H], w_i[H:2 * H], w_i[2 * H:]
    b_ir, b_iz, b_in = b_i[:H], b_i[H:2 * H], b_i[2 * H:]
    W_hr, W_hz, W_hn = w_h[:H], w_h[H:2 * H], w_h[2 * H:]
    b_hr, b_hz, b_hn = b_h[:H], b_h[H:2 * H], b_h[2 * H:]
    fc1_k, fc1_b = p["fc1"]["kernel"].astype(np.float64), p["fc1"]["bias"].astype(np.float64)
    fc2_k, fc2_b = p["fc2"]["kernel"].astype(np.float64), p["fc2"]["bias"].astype(np.float64)
    T, B, _ = inputs.shape
    hs = np.zeros((T, B, H))
    qs = np.zeros((T, B, fc2_k.shape[1]))
    for b in range(B):
        h = h0[b].astype(np.float64)
        for t in range(T):
            x = np.maximum(inputs[t, b] @ fc1_k + fc1_b, 0.0)
            r = _sigmoid(W_ir @ x + b_ir + W_hr @ h + b_hr)
            z = _sigmoid(W_iz @ x + b_iz + W_hz @ h + b_hz)
            n = np.tanh(W_in @ x + b_in + r * (W_hn @ h + b_hn))
            h = (1.0 - z) * n + z * h
            hs[t, b] = h
            qs[t, b] = h @ fc2_k + fc2_b
    return hs, qs


def test_agent_rnn_matches_pytorch_grucell_equations():
    B, T, H, A, in_dim = 3, 5, 4, 3, 6
    rnn = AgentRNN(hidden=H, num_actions=A)
    params = jax.eval_shape(rnn.init, jax.random.key(0), jnp.zeros((B, H)), jnp.zeros((T, B, in_dim)))
    # Replace every parameter by a larger random value so that all gates are far from linear.
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(7), len(leaves))
    leaves = [0.8 * jax.random.normal(k, leaf.shape) for k, leaf in zip(keys, leaves)]
    params = jax.tree_util.tree_unflatten(treedef, leaves)
    rng = np.random.default_rng(0)
    h0 = rng.normal(size=(B, H)).astype(np.float32) * 0.5
    inputs = rng.normal(size=(T, B, in_dim)).astype(np.float32)

    apply = jax.jit(rnn.apply)
    h_last, q = apply(params, jnp.asarray(h0), jnp.asarray(inputs))
    p = jax.tree_util.tree_map(np.asarray, params)["params"]
    ref_hs, ref_qs = _reference_agent_rnn(p, h0, inputs)
    np.testing.assert_allclose(np.asarray(h_last), ref_hs[-1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(q), ref_qs, rtol=1e-4, atol=1e-5)

    # Stepping one time step at a time, feeding back the returned hidden state, is the same.
    h = jnp.asarray(h0)
    stepped = []
    for t in range(T):
        h, q_t = apply(params, h, jnp.asarray(inputs[t:t + 1]))
        stepped.append(np.asarray(q_t[0]))
    np.testing.assert_allclose(np.stack(stepped), np.asarray(q), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(h), np.asarray(h_last), rtol=1e-5, atol=1e-6)


def _autodiff_rnn_sequence(h0, inputs, w_1, b_1, w_i, b_i, w_h, b_h):
    """Input layer, ReLU and GRU recurrence as plain JAX, differentiated by JAX: the reference
    for the hand-written gradient of `rnn_sequence`."""
    H = h0.shape[-1]
    gx = jax.nn.relu(inputs @ w_1 + b_1) @ w_i + b_i

    def cell(h, x):
        xr, xz, xn = x
        gh = h @ w_h + b_h
        r = jax.nn.sigmoid(xr + gh[:, :H])
        z = jax.nn.sigmoid(xz + gh[:, H:2 * H])
        n = jnp.tanh(xn + r * gh[:, 2 * H:])
        h = (1.0 - z) * n + z * h
        return h, h

    return jax.lax.scan(cell, h0, (gx[..., :H], gx[..., H:2 * H], gx[..., 2 * H:]))[1]


def test_rnn_sequence_hand_written_gradient_matches_autodiff():
    T, B, H, IN, X = 7, 3, 5, 4, 6
    keys = jax.random.split(jax.random.key(3), 9)
    h0 = 0.5 * jax.random.normal(keys[0], (B, H))
    inputs = jax.random.normal(keys[1], (T, B, IN))
    w_1 = jax.random.normal(keys[7], (IN, X))
    b_1 = 0.5 * jax.random.normal(keys[8], (X,))  # some ReLUs off, some on
    w_i = 0.8 * jax.random.normal(keys[2], (X, 3 * H))
    b_i = 0.5 * jax.random.normal(keys[3], (3 * H,))
    w_h = 0.8 * jax.random.normal(keys[4], (H, 3 * H))
    b_h = 0.5 * jax.random.normal(keys[5], (3 * H,))
    weights = jax.random.normal(keys[6], (T, B, H))  # a loss that weighs every step differently
    args = (h0, inputs, w_1, b_1, w_i, b_i, w_h, b_h)

    def loss(f):
        return lambda *a: jnp.sum(jnp.sin(f(*a)) * weights)

    pre = np.asarray(inputs @ w_1 + b_1)
    assert (pre > 0).mean() > 0.2 and (pre < 0).mean() > 0.2
    np.testing.assert_allclose(np.asarray(rnn_sequence(*args)), np.asarray(_autodiff_rnn_sequence(*args)),
                               rtol=1e-6, atol=1e-6)
    argnums = tuple(range(len(args)))
    ours = jax.jit(jax.grad(loss(rnn_sequence), argnums=argnums))(*args)
    reference = jax.jit(jax.grad(loss(_autodiff_rnn_sequence), argnums=argnums))(*args)
    for name, a, b in zip(("h0", "inputs", "w_1", "b_1", "w_i", "b_i", "w_h", "b_h"), ours, reference):
        assert float(jnp.max(jnp.abs(b))) > 1e-2, name  # every gradient is non-trivial
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5, err_msg=name)
    # Under vmap (many seeds) the gradient is the same per lane.
    stacked = jax.tree_util.tree_map(lambda x: jnp.stack([x, 2 * x]), args)
    lanes = jax.jit(jax.vmap(jax.grad(loss(rnn_sequence), argnums=6)))(*stacked)
    np.testing.assert_allclose(np.asarray(lanes[0]), np.asarray(ours[6]), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Monotonicity


def _per_sample_grads(module):
    """jit(params, qs (N, n), states (N, s)) -> dQ_tot/dq (N, n), one gradient per sample."""

    def grads(params, qs, states):
        def q_tot(q, s):
            return module.apply(params, q, s)[0]

        return jax.vmap(jax.grad(q_tot))(qs, states)

    return jax.jit(grads)


def test_qmix_mixer_is_monotonic_in_every_agent_utility():
    n, s, N = 4, 6, 64
    mixer = QMixer(embed=8, hypernet_embed=16)
    init, apply, grad_fn = jax.jit(mixer.init), jax.jit(mixer.apply), _per_sample_grads(mixer)
    all_grads = []
    for seed in range(4):
        k_init, k_q, k_s = jax.random.split(jax.random.key(seed), 3)
        params = init(k_init, jnp.zeros((1, n)), jnp.zeros((1, s)))
        qs = 5.0 * jax.random.normal(k_q, (N, n))
        states = 2.0 * jax.random.normal(k_s, (N, s))
        grads = np.asarray(grad_fn(params, qs, states))
        assert grads.shape == (N, n)
        all_grads.append(grads)
        # Global monotonicity as well: raising any utilities never lowers Q_tot.
        bumps = jnp.abs(3.0 * jax.random.normal(jax.random.key(100 + seed), (N, n)))
        low = apply(params, qs, states)
        high = apply(params, qs + bumps, states)
        assert np.all(np.asarray(high) >= np.asarray(low) - 1e-5)
    all_grads = np.concatenate(all_grads)
    assert all_grads.shape[0] >= 50
    assert np.all(all_grads >= 0.0), all_grads.min()
    assert all_grads.max() > 0.0  # not trivially constant


def test_central_mixer_is_not_monotonic():
    n, s, N = 4, 6, 64
    mixer = CentralMixer(hidden=16)
    init, grad_fn = jax.jit(mixer.init), _per_sample_grads(mixer)
    found_negative = False
    for seed in range(4):
        k_init, k_q, k_s = jax.random.split(jax.random.key(seed), 3)
        params = init(k_init, jnp.zeros((1, n)), jnp.zeros((1, s)))
        qs = 5.0 * jax.random.normal(k_q, (N, n))
        states = 2.0 * jax.random.normal(k_s, (N, s))
        grads = np.asarray(grad_fn(params, qs, states))
        if np.any(grads < 0.0):
            found_negative = True
            break
    assert found_negative


# --------------------------------------------------------------------------------------------
# VDN and initialisation


def test_vdn_is_the_sum_of_utilities():
    qs = np.array([[1.5, -2.0, 0.25], [0.0, 3.0, -4.0]], np.float32)
    states = np.zeros((2, 7), np.float32)
    mixer = VDNMixer()
    params = mixer.init(jax.random.key(0), qs, states)
    assert jax.tree_util.tree_leaves(params) == []
    out = np.asarray(mixer.apply(params, jnp.asarray(qs), jnp.asarray(states)))
    np.testing.assert_allclose(out, [[-0.25], [-1.0]], rtol=1e-6)


def test_independent_heads_pass_utilities_through():
    qs = jnp.array([[1.0, -2.0, 3.0]])
    heads = IndependentHeads()
    params = heads.init(jax.random.key(0), qs, jnp.zeros((1, 2)))
    np.testing.assert_array_equal(np.asarray(heads.apply(params, qs, jnp.zeros((1, 2)))), np.asarray(qs))


@pytest.mark.parametrize("fan_in,features", [(3, 200), (7, 100), (64, 32)])
def test_linear_init_is_pytorch_default(fan_in, features):
    layer = Linear(features)
    params = jax.jit(layer.init)(jax.random.key(fan_in), jnp.zeros((1, fan_in)))["params"]
    bound = 1.0 / math.sqrt(fan_in)
    kernel, bias = np.asarray(params["kernel"]), np.asarray(params["bias"])
    assert kernel.shape == (fan_in, features)
    assert bias.shape == (features,)
    assert np.all(np.abs(kernel) <= bound)
    assert np.all(np.abs(bias) <= bound)
    # Uniform over the whole interval, not a narrower one: extremes come near the bound, and
    # the mean |w| is about bound / 2.
    assert np.abs(kernel).max() > 0.9 * bound
    assert np.abs(bias).max() > 0.8 * bound
    assert abs(np.abs(kernel).mean() - bound / 2) < 0.1 * bound


def test_gru_init_is_pytorch_default():
    H = 16
    rnn = AgentRNN(hidden=H, num_actions=3)
    p = jax.jit(rnn.init)(jax.random.key(0), jnp.zeros((1, H)), jnp.zeros((1, 1, 5)))["params"]
    bound = 1.0 / math.sqrt(H)
    for name in ("gru_w_i", "gru_b_i", "gru_w_h", "gru_b_h"):
        values = np.abs(np.asarray(p[name]))
        assert np.all(values <= bound), name
        assert values.max() > 0.8 * bound, name
    assert p["gru_w_i"].shape == (H, 3 * H)
    assert p["gru_w_h"].shape == (H, 3 * H)


# --------------------------------------------------------------------------------------------
# Agent inputs and parameter sets


def test_agent_inputs_hand_built():
    spec = MatrixGame().spec  # 2 agents, 3 actions, obs_dim 5
    networks = make_networks(ALGORITHMS["qmix"], NetworkConfig(), spec)
    obs = jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0]])
    prev = jnp.array([-1, 2])
    out = np.asarray(agent_inputs(networks, obs, prev))
    expected = np.array([
        [1, 2, 3, 4, 5, 0, 0, 0, 1, 0],
        [6, 7, 8, 9, 10, 0, 0, 1, 0, 1],
    ], np.float32)
    np.testing.assert_array_equal(out, expected)
    assert networks.input_dim_extra == 3 + 2

    # Leading axes (time, batch): every position gets its own one-hot action and the same ids.
    obs_tb = jnp.zeros((2, 3, 2, 5))
    prev_tb = jnp.array([[[0, 1], [2, -1], [-1, -1]], [[1, 1], [0, 2], [2, 0]]])
    out_tb = np.asarray(agent_inputs(networks, obs_tb, prev_tb))
    assert out_tb.shape == (2, 3, 2, 10)
    prev_np = np.asarray(prev_tb)
    for idx in np.ndindex(2, 3, 2):
        a = prev_np[idx]
        one_hot = np.zeros(3) if a < 0 else np.eye(3)[a]
        np.testing.assert_array_equal(out_tb[idx][5:8], one_hot)
        np.testing.assert_array_equal(out_tb[idx][8:], np.eye(2)[idx[-1]])


def test_agent_inputs_without_extras():
    spec = MatrixGame().spec
    networks = make_networks(ALGORITHMS["vdn"], NetworkConfig(obs_last_action=False, obs_agent_id=False), spec)
    obs = jnp.arange(10.0).reshape(2, 5)
    out = agent_inputs(networks, obs, jnp.array([0, 1]))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(obs))
    assert networks.input_dim_extra == 0

    only_ids = make_networks(ALGORITHMS["vdn"], NetworkConfig(obs_last_action=False), spec)
    out = np.asarray(agent_inputs(only_ids, obs, jnp.array([0, 1])))
    np.testing.assert_array_equal(out[:, 5:], np.eye(2))


def test_init_params_keys_and_shapes():
    spec = MatrixGame().spec
    net_cfg = NetworkConfig(agent_hidden=8, mixer_embed=4, hypernet_embed=6,
                            central_agent_hidden=10, central_mixer_hidden=12)
    in_dim = spec.obs_dim + spec.num_actions + spec.num_agents  # 5 + 3 + 2

    central = make_networks(ALGORITHMS["ow-qmix"], net_cfg, spec)
    params = jax.eval_shape(lambda k: init_params(central, spec, k), jax.random.key(0))
    assert set(params) == {"agent", "mixer", "central_agent", "central_mixer"}
    assert params["agent"]["params"]["fc1"]["kernel"].shape == (in_dim, 8)
    assert params["agent"]["params"]["fc2"]["kernel"].shape == (8, spec.num_actions)
    assert params["central_agent"]["params"]["fc1"]["kernel"].shape == (in_dim, 10)
    assert params["central_mixer"]["params"]["fc1"]["kernel"].shape == (spec.state_dim + spec.num_agents, 12)
    assert params["mixer"]["params"]["hyper_w1_out"]["kernel"].shape == (6, spec.num_agents * 4)

    plain = make_networks(ALGORITHMS["qmix"], net_cfg, spec)
    params = jax.eval_shape(lambda k: init_params(plain, spec, k), jax.random.key(0))
    assert set(params) == {"agent", "mixer"}
    assert plain.central_agent is None and plain.central_mixer is None

    vdn = make_networks(ALGORITHMS["vdn"], net_cfg, spec)
    params = jax.eval_shape(lambda k: init_params(vdn, spec, k), jax.random.key(0))
    assert set(params) == {"agent", "mixer"}
    assert jax.tree_util.tree_leaves(params["mixer"]) == []


# ---- the projector write-up's network options: a feed-forward agent, and one network per agent -


@pytest.mark.parametrize("kind, hidden_layers", [("mlp", ("fc1",)), ("ff", ("fc1", "fc_hidden"))])
def test_feed_forward_agents_are_their_layers_with_no_memory(kind, hidden_layers):
    """The write-up's MLP agent: fc1 -> ReLU -> fc2. EPyMARL's `rnn_agent` with `use_rnn: False`
    (ff): fc1 -> ReLU -> Linear -> ReLU -> fc2. Neither changes the hidden state it is given;
    with `all_hidden` each returns its last hidden layer at every step."""
    from wqmix.networks import AGENT_NETWORKS

    agent = AGENT_NETWORKS[kind](hidden=5, num_actions=3)
    x = jnp.asarray(np.random.default_rng(3).normal(size=(4, 2, 6)), jnp.float32)  # (T, B, in)
    h0 = jnp.ones((2, 5))
    params = agent.init(jax.random.key(0), h0, x)
    h, q = agent.apply(params, h0, x)
    p = params["params"]

    def layer(v, name):
        return np.asarray(v) @ p[name]["kernel"] + p[name]["bias"]

    features = np.asarray(x)
    for name in hidden_layers:
        features = np.maximum(layer(features, name), 0)
    np.testing.assert_allclose(q, layer(features, "fc2"), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(h, h0)
    hidden, _ = AGENT_NETWORKS[kind](hidden=5, num_actions=3, all_hidden=True).apply(params, h0, x)
    np.testing.assert_allclose(hidden, features, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["rnn", "mlp", "ff"])
def test_per_agent_networks_each_apply_their_own_parameters(kind):
    from wqmix.agents import unroll_agents
    from wqmix.networks import AGENT_NETWORKS, PerAgent

    n, T, B, H, A, D = 3, 4, 2, 6, 5, 7
    agent = PerAgent(kind=kind, hidden=H, num_actions=A)
    inputs = jnp.asarray(np.random.default_rng(1).normal(size=(T, B, n, D)), jnp.float32)
    params = agent.init(jax.random.key(2), jnp.zeros((1, n, H)), jnp.zeros((1, 1, n, D)))
    leaves = jax.tree_util.tree_leaves(params)
    assert all(leaf.shape[0] == n for leaf in leaves)
    assert not np.allclose(leaves[0][0], leaves[0][1])  # independently initialised
    h, q = unroll_agents(agent, params, jnp.zeros((B, n, H)), inputs)
    assert h.shape == (B, n, H) and q.shape == (T, B, n, A)
    single = AGENT_NETWORKS[kind](hidden=H, num_actions=A)
    for i in range(n):
        p_i = jax.tree_util.tree_map(lambda x: x[i], params)["params"]["agents"]
        h_i, q_i = single.apply({"params": p_i}, jnp.zeros((B, H)), inputs[:, :, i])
        np.testing.assert_allclose(q[:, :, i], q_i, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(h[:, i], h_i, rtol=1e-5, atol=1e-6)


@pytest.mark.integration
@pytest.mark.parametrize("agent, shared", [("rnn", False), pytest.param("mlp", False, marks=pytest.mark.slow)])
def test_every_algorithm_trains_with_the_seeds_network_options(tiny, agent, shared):
    from wqmix import config as cfg
    from wqmix.learner import make_loss
    from wqmix.train import Trainer

    from wqmix.envs.configs import PredatorPreyConfig

    base = tiny("ow-qmix")  # predator-prey: episodes of several steps, so the GRU's recurrence matters
    config = cfg.validate(dataclasses.replace(
        base, env=PredatorPreyConfig(grid_size=3, num_agents=2, num_prey=1, time_limit=4, punishment=-0.5),
        network=dataclasses.replace(base.network, agent=agent, shared_agent=shared)))
    trainer = Trainer(config)
    state = trainer.init(jax.random.key(0))
    episodes, _ = jax.jit(trainer.rollout, static_argnums=3)(jax.random.key(1), state.learner.params["agent"],
                                                             jnp.float32(1.0), 4)
    loss_fn = make_loss(config.algo, trainer.networks)
    grads = jax.jit(jax.grad(lambda p: loss_fn(p, state.learner.target_params, episodes)[0]))(state.learner.params)
    for key in ("agent", "central_agent"):
        for g in jax.tree_util.tree_leaves(grads[key]):
            per_agent = g.reshape(trainer.spec.num_agents if not shared else 1, -1)
            assert bool(jnp.all(jnp.max(jnp.abs(per_agent), axis=1) > 0)), (key, g.shape)
