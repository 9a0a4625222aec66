"""The learner's loss on hand-built batches: where the targets come from (double-Q: online
greedy action, target networks' value), terminal vs time-limit steps, padding, and the OW/CW
weights, checked against values computed by hand.

Agent networks are made to output a constant utility vector (zero output kernel, chosen bias),
and the central mixer a constant (zero output kernels, chosen biases), so every target is known.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wqmix.agents import init_params, make_networks
from wqmix.buffer import Episodes
from wqmix.config import ALGORITHMS, NetworkConfig
from wqmix.envs.base import EnvSpec
from wqmix.learner import make_loss

SPEC = EnvSpec(num_agents=2, obs_dim=2, state_dim=3, num_actions=3, time_limit=3)
NET = NetworkConfig(agent_hidden=8, mixer_embed=4, hypernet_embed=8, central_agent_hidden=8,
                    central_mixer_hidden=16)
GAMMA, ALPHA = 0.9, 0.3

ONLINE_UTILITIES = np.array([1.0, 3.0, 2.0])  # online greedy action: 1
TARGET_UTILITIES = np.array([0.5, -1.0, 4.0])  # its own max (4.0) is NOT what double-Q uses
CENTRAL_ONLINE, CENTRAL_TARGET = 1.5, -0.5


def constant_agent(params, utilities):
    p = jax.tree_util.tree_map(lambda x: x, params)
    p["params"]["fc2"]["kernel"] = jnp.zeros_like(p["params"]["fc2"]["kernel"])
    p["params"]["fc2"]["bias"] = jnp.asarray(utilities, jnp.float32)
    return p


def constant_central_mixer(params, value):
    p = jax.tree_util.tree_map(lambda x: x, params)
    for layer in ("out", "v_out"):
        p["params"][layer]["kernel"] = jnp.zeros_like(p["params"][layer]["kernel"])
    p["params"]["out"]["bias"] = jnp.array([value - 0.25], jnp.float32)
    p["params"]["v_out"]["bias"] = jnp.array([0.25], jnp.float32)
    return p


def batch():
    rng = np.random.default_rng(0)
    # Episode 0: two steps, cut by the time limit after step 1 (bootstraps). Episode 1: terminates
    # at step 0. Padding steps carry a reward of 100 that must be ignored.
    return Episodes(
        obs=jnp.asarray(rng.normal(size=(2, 4, 2, 2)), jnp.float32),
        state=jnp.asarray(rng.normal(size=(2, 4, 3)), jnp.float32),
        avail=jnp.ones((2, 4, 2, 3), bool),
        actions=jnp.array([[[1, 1], [0, 2], [0, 0]], [[2, 1], [0, 0], [0, 0]]], jnp.int32),
        reward=jnp.array([[1.0, -3.0, 100.0], [5.0, 100.0, 100.0]], jnp.float32),
        terminated=jnp.array([[False, False, False], [True, False, False]]),
        filled=jnp.array([[True, True, False], [True, False, False]]),
        alive=jnp.ones((2, 4, 2), bool),
    )


VALID = [(0, 0), (0, 1), (1, 0)]  # (episode, step) of the real steps


def params_for(algo_name):
    algo = dataclasses.replace(ALGORITHMS[algo_name], alpha=ALPHA, gamma=GAMMA)
    networks = make_networks(algo, NET, SPEC)
    params = init_params(networks, SPEC, jax.random.key(0))
    target = init_params(networks, SPEC, jax.random.key(1))
    params["agent"] = constant_agent(params["agent"], ONLINE_UTILITIES)
    target["agent"] = constant_agent(target["agent"], TARGET_UTILITIES)
    if algo.central:
        params["central_mixer"] = constant_central_mixer(params["central_mixer"], CENTRAL_ONLINE)
        target["central_mixer"] = constant_central_mixer(target["central_mixer"], CENTRAL_TARGET)
    return algo, networks, params, target


def hand_targets(next_value):
    b = batch()
    y = {}
    for e, t in VALID:
        bootstrap = 0.0 if bool(b.terminated[e, t]) else GAMMA * next_value
        y[(e, t)] = float(b.reward[e, t]) + bootstrap
    return y


@pytest.mark.parametrize("use_jit", [False, True])
def test_vdn_double_q_targets_time_limit_and_padding(use_jit):
    algo, networks, params, target = params_for("vdn")
    loss_fn = make_loss(algo, networks)
    loss_fn = jax.jit(loss_fn) if use_jit else loss_fn
    loss, metrics = loss_fn(params, target, batch())
    # Online greedy action is 1 for both agents; the target net values it at -1 each.
    y = hand_targets(next_value=2 * TARGET_UTILITIES[1])
    b = batch()
    errors = [(ONLINE_UTILITIES[b.actions[e, t, 0]] + ONLINE_UTILITIES[b.actions[e, t, 1]] - y[(e, t)]) ** 2
              for e, t in VALID]
    np.testing.assert_allclose(float(loss), np.mean(errors), rtol=1e-5)
    np.testing.assert_allclose(float(metrics.target_mean), np.mean(list(y.values())), rtol=1e-5)
    assert float(metrics.central_loss) == 0.0 and float(metrics.mean_weight) == 1.0


def test_iql_per_agent_targets():
    algo, networks, params, target = params_for("iql")
    loss, _ = make_loss(algo, networks)(params, target, batch())
    y = hand_targets(next_value=TARGET_UTILITIES[1])
    b = batch()
    errors = [(ONLINE_UTILITIES[b.actions[e, t, i]] - y[(e, t)]) ** 2 for e, t in VALID for i in range(2)]
    np.testing.assert_allclose(float(loss), np.mean(errors), rtol=1e-5)


@pytest.mark.parametrize("algo_name", ["ow-qmix", "cw-qmix"])
def test_wqmix_targets_from_target_central_and_weights(algo_name):
    algo, networks, params, target = params_for(algo_name)
    loss, metrics = make_loss(algo, networks)(params, target, batch())
    b = batch()
    y = hand_targets(next_value=CENTRAL_TARGET)  # the target Q-hat* at online QMIX's greedy action
    q_tot = {}
    for e, t in VALID:
        utilities = jnp.asarray(ONLINE_UTILITIES[np.asarray(b.actions[e, t])], jnp.float32)
        q_tot[(e, t)] = float(networks.mixer.apply(params["mixer"], utilities, b.state[e, t])[0])
    weights = {}
    for key in VALID:
        if algo_name == "ow-qmix":
            weights[key] = 1.0 if q_tot[key] < y[key] else ALPHA
        else:
            greedy = bool(np.all(np.asarray(b.actions[key]) == 1))
            weights[key] = 1.0 if greedy or y[key] > CENTRAL_TARGET else ALPHA
    qmix_loss = np.mean([weights[k] * (q_tot[k] - y[k]) ** 2 for k in VALID])
    central_loss = np.mean([(CENTRAL_ONLINE - y[k]) ** 2 for k in VALID])
    np.testing.assert_allclose(float(metrics.qmix_loss), qmix_loss, rtol=1e-5)
    np.testing.assert_allclose(float(metrics.central_loss), central_loss, rtol=1e-5)
    np.testing.assert_allclose(float(loss), qmix_loss + central_loss, rtol=1e-5)
    np.testing.assert_allclose(float(metrics.mean_weight), np.mean(list(weights.values())), rtol=1e-5)
    assert ALPHA in weights.values() and 1.0 in weights.values()  # both branches exercised


def test_ablation_targets_come_from_qmix_target_networks():
    algo, networks, params, target = params_for("ow-qmix-no-central")
    _, metrics = make_loss(algo, networks)(params, target, batch())
    b = batch()
    greedy_target = jnp.full((2,), TARGET_UTILITIES[1], jnp.float32)
    y = {}
    for e, t in VALID:
        v_next = float(networks.mixer.apply(target["mixer"], greedy_target, b.state[e, t + 1])[0])
        y[(e, t)] = float(b.reward[e, t]) + (0.0 if bool(b.terminated[e, t]) else GAMMA * v_next)
    np.testing.assert_allclose(float(metrics.target_mean), np.mean(list(y.values())), rtol=1e-5)
    assert float(metrics.central_loss) == 0.0


def test_gradients_reach_every_online_network_and_no_target():
    algo = ALGORITHMS["ow-qmix"]
    networks = make_networks(algo, NET, SPEC)
    params = init_params(networks, SPEC, jax.random.key(0))
    target = init_params(networks, SPEC, jax.random.key(1))
    loss_fn = make_loss(algo, networks)
    grads = jax.jit(jax.grad(lambda p: loss_fn(p, target, batch())[0]))(params)
    norms = {k: float(sum(jnp.sum(jnp.abs(g)) for g in jax.tree_util.tree_leaves(v))) for k, v in grads.items()}
    assert all(n > 0 for n in norms.values()), norms
    # The targets are constants: no gradient flows into the target parameters.
    target_grads = jax.jit(jax.grad(lambda tp: loss_fn(params, tp, batch())[0]))(target)
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree_util.tree_leaves(target_grads))


def test_td_lambda_targets_in_the_learner():
    algo, networks, params, target = params_for("vdn")
    algo = dataclasses.replace(algo, td_lambda=0.5)
    _, metrics = make_loss(algo, networks)(params, target, batch())
    b = batch()
    v = 2 * TARGET_UTILITIES[1]
    y01 = float(b.reward[0, 1]) + GAMMA * v  # cut by the time limit: bootstraps, no lambda mixing
    y00 = float(b.reward[0, 0]) + GAMMA * ((1 - 0.5) * v + 0.5 * y01)
    y10 = float(b.reward[1, 0])  # terminated
    np.testing.assert_allclose(float(metrics.target_mean), np.mean([y00, y01, y10]), rtol=1e-5)


def test_departed_agents_leave_the_loss():
    """Agent 1 leaves episode 0 after step 0: from step 1 on its utility is not mixed in, neither
    in Q_tot nor in the bootstrap value, and (IQL) its head has no loss."""
    b = batch()
    alive = np.ones((2, 4, 2), bool)
    alive[0, 1:, 1] = False
    b = b.replace(alive=jnp.asarray(alive))
    algo, networks, params, target = params_for("vdn")
    loss, _ = make_loss(algo, networks)(params, target, b)
    v_both, v_one = 2 * TARGET_UTILITIES[1], TARGET_UTILITIES[1]
    q = {(0, 0): ONLINE_UTILITIES[1] + ONLINE_UTILITIES[1], (0, 1): ONLINE_UTILITIES[0],
         (1, 0): ONLINE_UTILITIES[2] + ONLINE_UTILITIES[1]}
    y = {(0, 0): 1.0 + GAMMA * v_one, (0, 1): -3.0 + GAMMA * v_one, (1, 0): 5.0}
    assert v_both != v_one
    np.testing.assert_allclose(float(loss), np.mean([(q[k] - y[k]) ** 2 for k in VALID]), rtol=1e-5)

    # IQL: agent 1's head stops at step 0 and bootstraps from nothing (its own episode ended).
    algo, networks, params, target = params_for("iql")
    loss, _ = make_loss(algo, networks)(params, target, b)

    def y_head(e, t, i):
        if bool(b.terminated[e, t]):
            return float(b.reward[e, t])
        return float(b.reward[e, t]) + GAMMA * (TARGET_UTILITIES[1] if alive[e, t + 1, i] else 0.0)

    heads = [((e, t), i) for e, t in VALID for i in range(2) if alive[e, t, i]]
    errors = [(ONLINE_UTILITIES[b.actions[e, t, i]] - y_head(e, t, i)) ** 2 for (e, t), i in heads]
    assert len(heads) == 5
    np.testing.assert_allclose(float(loss), np.mean(errors), rtol=1e-5)


@pytest.mark.parametrize("name, first_update", [
    # RMSprop, PyTorch's: g / (sqrt(0.01 g^2) + eps) = 10 sign(g), times lr.
    ("rmsprop", [-0.1 * 0.5 / (0.1 * 0.5 + 1e-5), 0.1 * 2.0 / (0.1 * 2.0 + 1e-5)]),
    # Adam: bias-corrected m / (sqrt(v) + eps) = g / (|g| + eps), times lr.
    ("adam", [-0.1 * 0.5 / (0.5 + 1e-5), 0.1 * 2.0 / (2.0 + 1e-5)]),
    # RAdam: at step 1 the variance is not yet tractable (rho_1 = 1999 - 2 * 0.999 / 0.001 = 1 <= 5),
    # so the step is the bias-corrected momentum alone: lr * g.
    ("radam", [-0.1 * 0.5, 0.1 * 2.0]),
])
def test_each_optimiser_takes_its_own_first_step(name, first_update):
    from wqmix.config import OptimConfig
    from wqmix.learner import make_optimizer

    optimizer = make_optimizer(OptimConfig(name=name, lr=0.1, grad_norm_clip=100.0))
    params = {"w": jnp.zeros(2)}
    grads = {"w": jnp.array([0.5, -2.0])}
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    np.testing.assert_allclose(updates["w"], first_update, rtol=1e-5)
