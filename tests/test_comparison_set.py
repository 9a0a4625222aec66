"""QTRAN's joint-action network, Qatten's attention mixer and the attention central mixer by hand,
their configs (official presets, options refused elsewhere, stored runs still matched), and a
short training run of each. Their learners' loss and every gradient are checked against
independent ports of the official code in tests/test_qtran_official.py,
tests/test_qatten_official.py and tests/test_learner_official.py."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wqmix import config as cfg
from wqmix.errors import ConfigError
from wqmix.learner.qatten import official_rows
from wqmix.networks import AttentionCentralMixer, AttentionMixer, JointActionNetwork

N, A, H, S = 3, 4, 5, 6


def dense(p, x):
    return x @ np.asarray(p["kernel"]) + (np.asarray(p["bias"]) if "bias" in p else 0.0)


def mlp(p, prefix, x, layers):
    for j in range(layers):
        x = dense(p[f"{prefix}_{j}"], x)
        if j < layers - 1:
            x = np.maximum(x, 0.0)
    return x


@pytest.mark.parametrize("network_size, layers", [("small", 3), ("big", 4)])
def test_joint_action_network_by_hand(network_size, layers):
    """Q_jt = MLP([s || sum_i enc(h_i || onehot u_i)]), V_jt = MLP(s) (official QTranBase, qtran_paper)."""
    module = JointActionNetwork(embed=7, network_size=network_size)
    rng = np.random.default_rng(0)
    state = rng.normal(size=(2, S)).astype(np.float32)
    hidden = rng.normal(size=(2, N, H)).astype(np.float32)
    actions = np.eye(A, dtype=np.float32)[rng.integers(A, size=(2, N))]
    params = module.init(jax.random.key(0), state, hidden, actions)
    p = params["params"]
    pairs = np.concatenate([hidden, actions], -1)
    encoding = dense(p["encoding_1"], np.maximum(dense(p["encoding_0"], pairs), 0.0)).sum(1)
    q, v = module.apply(params, state, hidden, actions)
    np.testing.assert_allclose(q, mlp(p, "q", np.concatenate([state, encoding], -1), layers), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v, mlp(p, "v", state, layers), rtol=1e-5, atol=1e-6)
    assert sorted(p) == sorted([f"q_{j}" for j in range(layers)] + [f"v_{j}" for j in range(layers)]
                               + ["encoding_0", "encoding_1"])


def attention_mixer(**options):
    return AttentionMixer(**{**dict(n_head=2, embed=8, hypernet_embed=6, unit_dim=2), **options})


def test_attention_mixer_with_zero_keys_averages_the_utilities():
    """Zero keys give zero logits, so every head attends 1/n to each agent: Q_tot = heads * mean_i Q_i + V(s)."""
    module = attention_mixer()
    rng = np.random.default_rng(1)
    qs, state = rng.normal(size=(5, N)).astype(np.float32), rng.normal(size=(5, S)).astype(np.float32)
    params = module.init(jax.random.key(0), qs, state)
    p = jax.tree_util.tree_map(np.asarray, params["params"])
    p = {**p, **{f"key_{h}": {"kernel": np.zeros_like(p[f"key_{h}"]["kernel"])} for h in range(2)}}
    q_tot = module.apply({"params": p}, qs, state)
    np.testing.assert_allclose(q_tot[:, 0], 2 * qs.mean(-1) + mlp(p, "v", state, 2)[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options", [{}, dict(hypernet_layers=2, weighted_head=True, nonlinear=True),
                                     dict(state_bias=False, mask_dead=True)])
def test_attention_mixer_by_hand(options):
    """lambda_h = softmax_i(query_h(s) . key_h(e_i) / sqrt(embed)), e_i = s[2i:2i+2] (|| Q_i)."""
    module = attention_mixer(**options)
    rng = np.random.default_rng(2)
    qs, state = rng.normal(size=(5, N)).astype(np.float32), rng.normal(size=(5, S)).astype(np.float32)
    actions = rng.integers(2, size=(5, N))
    params = module.init(jax.random.key(1), qs, state, actions)
    p = params["params"]
    layers = options.get("hypernet_layers", 1)
    units = state[:, :2 * N].reshape(5, N, 2)
    if options.get("nonlinear"):
        units = np.concatenate([units, qs[..., None]], -1)
    heads, logits = [], []
    for h in range(2):
        query = mlp(p, f"query_{h}", state, layers)
        logit = np.einsum("be,bne->bn", query, dense(p[f"key_{h}"], units))
        scaled = logit / np.sqrt(8)
        if options.get("mask_dead"):
            scaled = np.where(actions == 0, -99999999.0, scaled)
        weights = np.exp(scaled - scaled.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        heads.append((qs * weights).sum(-1))
        logits.append(logit)
    heads = np.stack(heads, -1)
    if options.get("weighted_head"):
        heads = np.abs(mlp(p, "w_head", state, layers)) * heads
    expected = heads.sum(-1)
    if options.get("state_bias", True):
        expected = expected + mlp(p, "v", state, 2)[:, 0]
    q_tot, got_logits, _ = module.apply(params, qs, state, actions, with_attention=True)
    np.testing.assert_allclose(q_tot[:, 0], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_logits, np.stack(logits, 1), rtol=1e-4, atol=1e-5)


def test_official_rows_by_hand():
    """Episodes of 3, 1 and 2 transitions in T = 4 rows: pymarl's batch has 3 rows (the longest
    episode) and each episode's final observation in row L_b."""
    filled = np.zeros((4, 3), bool)
    filled[:3, 0], filled[:1, 1], filled[:2, 2] = True, True, True
    expected = np.array([[1, 1, 1], [1, 1, 1], [1, 0, 1], [0, 0, 0]], bool)
    rows, longest = official_rows(jnp.asarray(filled))
    np.testing.assert_array_equal(rows, expected)
    assert int(longest) == 3


def test_attention_central_mixer_by_hand():
    """heads_k = sum_i softmax_i(atten(s))_{i,k} Q_i; Q = net(heads) + V(s); equal utilities c give heads = c."""
    module = AttentionCentralMixer(hidden=8, hypernet_embed=6)
    rng = np.random.default_rng(3)
    qs, state = rng.normal(size=(5, N)).astype(np.float32), rng.normal(size=(5, S)).astype(np.float32)
    params = module.init(jax.random.key(2), qs, state)
    p = params["params"]
    logits = mlp(p, "atten", state, 2).reshape(5, N, 8)
    weights = np.exp(logits - logits.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    heads = np.einsum("bn,bnk->bk", qs, weights)
    expected = mlp(p, "net", heads, 3) + mlp(p, "v", state, 2)
    np.testing.assert_allclose(module.apply(params, qs, state), expected, rtol=1e-5, atol=1e-6)
    same = np.full((5, N), 1.5, np.float32)
    expected_same = mlp(p, "net", np.full((5, 8), 1.5, np.float32), 3) + mlp(p, "v", state, 2)
    np.testing.assert_allclose(module.apply(params, same, state), expected_same, rtol=1e-5, atol=1e-6)


def test_presets_of_the_comparison_set():
    qtran = cfg.resolve_config(algo="qtran")
    assert (qtran.algo.mixer, qtran.algo.central, qtran.algo.weighting, qtran.algo.double_q) == ("qtran", False, "none", True)
    assert dataclasses.asdict(qtran.algo.qtran) == dict(embed=64, network_size="small", opt_loss=1.0, nopt_min_loss=0.1)
    qatten = cfg.resolve_config(algo="qatten", preset="predator-prey-paper")
    assert qatten.algo.name == "qatten" and qatten.train.packed_rows == ()
    assert dataclasses.asdict(qatten.algo.qatten) == dict(
        n_head=4, embed=32, attend_reg_coef=0.001, hypernet_layers=1, nonlinear=False, weighted_head=False,
        state_bias=True, mask_dead=False, unit_dim=None)
    for name, weighting in (("ow-qmix-atten", "ow"), ("cw-qmix-atten", "cw")):
        config = cfg.resolve_config(algo=name)
        assert (config.algo.central_mixer, config.algo.central, config.algo.weighting) == ("atten", True, weighting)
        assert config.algo.name == name and config.network.central_mixer_hidden == 256
    assert cfg.resolve_config(algo="ow-qmix").algo.central_mixer == "ff"


@pytest.mark.parametrize("algo, field, value, message", [
    ("qmix", "algo.qtran.opt_loss", "2", r"algo\.qtran\.opt_loss .*is a QTRAN option, but algo\.mixer is not 'qtran'"),
    ("qplex", "algo.qatten.n_head", "2", r"algo\.qatten\.n_head .*is a Qatten option, but algo\.mixer is not 'qatten'"),
    ("qmix", "algo.central_mixer", "atten", r"algo\.central_mixer .*algo\.central is false"),
    ("qtran", "algo.weighting", "ow", r"algo\.weighting .*must be 'none' with algo\.mixer 'qtran'"),
    ("qatten", "algo.central", "true", r"algo\.central .*must be false with algo\.mixer 'qatten'"),
    ("qatten", "algo.qatten.hypernet_layers", "3", r"algo\.qatten\.hypernet_layers .*must be 1 or 2"),
    ("qatten", "train.packed_rows", "[12]", r"train\.packed_rows .*must be \[\] with algo\.mixer 'qatten'"),
    ("ow-qmix", "algo.central_mixer", "big", r"algo\.central_mixer"),
])
def test_options_refused_with_one_line(algo, field, value, message):
    with pytest.raises(ConfigError, match=message) as error:
        cfg.resolve_config(algo=algo, overrides=[(field, value)])
    assert "\n" not in str(error.value)


def test_unit_dim_that_does_not_fit_the_state_is_refused_before_compiling():
    from wqmix.agents import make_networks
    from wqmix.envs.base import EnvSpec
    config = cfg.resolve_config(algo="qatten", overrides=[("algo.qatten.unit_dim", "3")])
    spec = EnvSpec(num_agents=2, obs_dim=5, state_dim=5, num_actions=3, time_limit=1)
    with pytest.raises(ConfigError, match=r"algo\.qatten\.unit_dim .*2 agents and state_dim 5"):
        make_networks(config.algo, config.network, spec)


def test_runs_stored_before_these_options_are_the_same_experiment():
    current = cfg.to_dict(cfg.resolve_config(algo="ow-qmix"))
    stored = {**current, "algo": {k: v for k, v in current["algo"].items()
                                  if k not in ("qtran", "qatten", "central_mixer")},
              "train": {k: v for k, v in current["train"].items() if k not in ("collector", "stream_window")}}
    assert cfg.config_difference(stored, current) is None
    streamed = cfg.to_dict(cfg.resolve_config(algo="ow-qmix", overrides=[("train.collector", "stream")]))
    assert cfg.config_difference(stored, streamed) == "train.collector"
    atten = cfg.to_dict(cfg.resolve_config(algo="ow-qmix-atten"))
    assert cfg.config_difference(stored, atten) == "algo.central_mixer"
