"""QPLEX's duplex dueling mixer and its config: the IGM property it is built for, its value at the
greedy joint action by hand, and its options refused on other algorithms."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wqmix import config as cfg
from wqmix.errors import ConfigError
from wqmix.networks import DuelingMixer

N_AGENTS, N_ACTIONS, STATE = 3, 3, 4


def mixer(weighted_head=True, is_minus_one=True):
    return DuelingMixer(num_actions=N_ACTIONS, hypernet_embed=8, adv_hypernet_embed=8, adv_hypernet_layers=3,
                        num_kernel=4, weighted_head=weighted_head, is_minus_one=is_minus_one)


def all_joint_actions():
    return np.stack(np.unravel_index(np.arange(N_ACTIONS ** N_AGENTS), (N_ACTIONS,) * N_AGENTS), axis=-1)


def mixed_table(module, params, utilities, state):
    """Q_tot of every joint action: (C,), with the greedy joint action of the utilities."""
    joint = all_joint_actions()  # (C, n)
    chosen = utilities[np.arange(N_AGENTS)[None], joint]  # (C, n)
    greedy = np.argmax(utilities, axis=-1)
    max_q = np.broadcast_to(utilities[np.arange(N_AGENTS), greedy], chosen.shape)
    one_hot = jax.nn.one_hot(joint, N_ACTIONS)
    states = np.broadcast_to(state, (len(joint), STATE))
    return np.asarray(module.apply(params, jnp.asarray(chosen), jnp.asarray(states), one_hot, jnp.asarray(max_q)))[:, 0]


@pytest.mark.parametrize("weighted_head, is_minus_one", [(True, True), (False, True), (True, False)])
def test_the_greedy_joint_action_maximises_q_tot(weighted_head, is_minus_one):
    """IGM: lambda_i > 0 and the advantages Q_i(u_i) - Q_i(u_i*) <= 0, so no joint action beats
    the agents' own greedy one."""
    module = mixer(weighted_head, is_minus_one)
    rng = np.random.default_rng(0)
    for seed in range(8):
        params = module.init(jax.random.key(seed), jnp.zeros((1, N_AGENTS)), jnp.zeros((1, STATE)))
        utilities = rng.normal(size=(N_AGENTS, N_ACTIONS)).astype(np.float32) * 3
        state = rng.normal(size=STATE).astype(np.float32)
        table = mixed_table(module, params, utilities, state)
        greedy = np.ravel_multi_index(tuple(np.argmax(utilities, -1)), (N_ACTIONS,) * N_AGENTS)
        assert np.argmax(table) == greedy
        assert np.ptp(table) > 1e-3  # the joint actions do differ


def test_value_at_the_greedy_joint_action_by_hand():
    """At u = u*, A_tot = 0 and Q_tot = sum_i (w_i(s) Q_i(u_i*) + v_i(s)), w_i = |W(s)| + 1e-10."""
    module = mixer()
    params = module.init(jax.random.key(3), jnp.zeros((1, N_AGENTS)), jnp.zeros((1, STATE)))
    p = jax.tree_util.tree_map(np.asarray, params["params"])
    rng = np.random.default_rng(1)
    utilities = rng.normal(size=(N_AGENTS, N_ACTIONS)).astype(np.float32)
    state = rng.normal(size=STATE).astype(np.float32)

    def mlp2(name):
        hidden = np.maximum(state @ p[f"{name}_0"]["kernel"] + p[f"{name}_0"]["bias"], 0.0)
        return hidden @ p[f"{name}_1"]["kernel"] + p[f"{name}_1"]["bias"]

    w, v = np.abs(mlp2("w_final")) + 1e-10, mlp2("v")
    best = utilities.max(-1)
    table = mixed_table(module, params, utilities, state)
    greedy = np.ravel_multi_index(tuple(np.argmax(utilities, -1)), (N_ACTIONS,) * N_AGENTS)
    np.testing.assert_allclose(table[greedy], np.sum(w * best + v), rtol=1e-5)
    # Without actions the mixer is V_tot alone (the official `is_v=True`), at any joint action.
    v_only = module.apply(params, jnp.asarray(utilities[:, 0][None]), jnp.asarray(state[None]))
    np.testing.assert_allclose(np.asarray(v_only)[0, 0], np.sum(w * utilities[:, 0] + v), rtol=1e-5)


def test_qplex_preset_and_its_options():
    config = cfg.resolve_config(algo="qplex")
    assert config.algo.mixer == "dmaq" and not config.algo.central and config.algo.weighting == "none"
    assert config.algo.double_q and config.algo.name == "qplex"
    assert dataclasses.asdict(config.algo.qplex) == dict(num_kernel=10, adv_hypernet_layers=3, adv_hypernet_embed=64,
                                                         is_minus_one=True, weighted_head=True)
    with pytest.raises(ConfigError, match=r"algo\.qplex\.num_kernel .*is a QPLEX option, but algo\.mixer is not"):
        cfg.resolve_config(algo="qmix", overrides=[("algo.qplex.num_kernel", "3")])
    with pytest.raises(ConfigError, match=r"algo\.central"):
        cfg.resolve_config(algo="qplex", overrides=[("algo.central", "true")])
    with pytest.raises(ConfigError, match=r"algo\.qplex\.adv_hypernet_layers"):
        cfg.resolve_config(algo="qplex", overrides=[("algo.qplex.adv_hypernet_layers", "4")])


def test_a_run_stored_before_the_qplex_section_is_the_same_experiment():
    current = cfg.to_dict(cfg.resolve_config(algo="ow-qmix"))
    stored = {**current, "algo": {k: v for k, v in current["algo"].items() if k != "qplex"}}
    assert cfg.config_difference(stored, current) is None
    changed = {**current, "algo": {**current["algo"], "qplex": {**current["algo"]["qplex"], "num_kernel": 3}}}
    assert cfg.config_difference(stored, changed) == "algo.qplex"
