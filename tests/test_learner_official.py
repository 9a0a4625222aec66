"""The learner against an independent port of the official learners (`official_reference.py`):
random networks (mixers that depend on their inputs, utilities that depend on time and on the
previous action), random availability masks, early terminations, time-limit cuts and padding
that holds garbage. The loss and the gradient of every parameter must agree for every algorithm,
and each of a list of single planted errors in `learner.py` must make them disagree.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wqmix.learner
from official_reference import NUMPY, Ops, official_loss, random_episodes
from wqmix.agents import init_params, make_networks
from wqmix.buffer import Episodes
from wqmix.config import ALGORITHMS, NetworkConfig
from wqmix.envs.base import EnvSpec

B, T, N_AGENTS, OBS, STATE, N_ACTIONS = 32, 5, 3, 4, 5, 4
SPEC = EnvSpec(num_agents=N_AGENTS, obs_dim=OBS, state_dim=STATE, num_actions=N_ACTIONS, time_limit=T)
NET = NetworkConfig(agent_hidden=8, mixer_embed=4, hypernet_embed=8, central_agent_hidden=8,
                    central_mixer_hidden=16)
GAMMA, ALPHA = 0.9, 0.3
ALGOS = ["ow-qmix", "cw-qmix", "qmix", "vdn", "iql", "ow-qmix-no-central", "cw-qmix-no-central"]
JAX_OPS = Ops(jnp, jax.lax.stop_gradient)


@pytest.fixture(scope="module")
def episodes():
    ours, official = random_episodes(np.random.default_rng(7), B, T, N_AGENTS, OBS, STATE, N_ACTIONS)
    return Episodes(**{k: jnp.asarray(v) for k, v in ours.items()}), official


def setup(algo_name):
    algo = dataclasses.replace(ALGORITHMS[algo_name], alpha=ALPHA, gamma=GAMMA)
    networks = make_networks(algo, NET, SPEC)
    params = spread_utilities(init_params(networks, SPEC, jax.random.key(11)))
    # Targets differ from the online networks (as between two copies) but stay close in scale.
    target = jax.tree_util.tree_map(lambda p, q: 0.5 * (p + q), params,
                                    spread_utilities(init_params(networks, SPEC, jax.random.key(12))))
    return algo, networks, params, target


def spread_utilities(params):
    """Output layers of the agent networks and of the central mixer x 10: at PyTorch's
    initialisation the values of different actions differ by about 0.1, too little for a wrong
    action or state to change a weight or a target measurably. Likewise the central mixer's input
    weights of the utilities (its last `agents` input rows), which would else hardly matter
    beside the state's."""
    for name, layer, keys in (("agent", "fc2", ["kernel"]), ("central_agent", "fc2", ["kernel"]),
                              ("central_mixer", "out", ["kernel", "bias"]), ("central_mixer", "v_out", ["kernel", "bias"])):
        for key in keys if name in params else []:  # agents' biases unscaled: no action dominates everywhere
            params[name]["params"][layer][key] = 10.0 * params[name]["params"][layer][key]
    if "central_mixer" in params:
        fc1 = params["central_mixer"]["params"]["fc1"]
        fc1["kernel"] = fc1["kernel"].at[-N_AGENTS:].multiply(10.0)
    return params


REFERENCE: dict[str, tuple[float, dict, dict]] = {}


def reference(algo_name, official):
    """(loss in float64, gradients, pieces) of the official learner for this algorithm."""
    if algo_name not in REFERENCE:
        _, _, params, target = setup(algo_name)
        as64 = lambda tree: jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), tree)  # noqa: E731
        official64 = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in official.items()}
        loss, pieces = official_loss(NUMPY, algo_name, as64(params), as64(target), official64, GAMMA, ALPHA,
                                     N_AGENTS, N_ACTIONS)
        grads = jax.jit(jax.grad(lambda p: official_loss(JAX_OPS, algo_name, p, target, official, GAMMA, ALPHA,
                                                         N_AGENTS, N_ACTIONS)[0]))(params)
        REFERENCE[algo_name] = (float(loss), grads, pieces)
    return REFERENCE[algo_name]


def ours(module, algo_name, batch):
    algo, networks, params, target = setup(algo_name)
    loss_fn = module.make_loss(algo, networks)
    (loss, _), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params, target, batch)
    return float(loss), grads


def disagreement(ref, mine) -> float:
    """Largest relative difference of the loss and of any gradient (relative to the largest
    gradient entry of its parameter)."""
    (ref_loss, ref_grads, _), (loss, grads) = ref, mine
    worst = abs(loss - ref_loss) / max(abs(ref_loss), 1e-6)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(ref_grads)
    for g, r in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(ref_grads)):
        g, r = np.asarray(g, np.float64), np.asarray(r, np.float64)
        worst = max(worst, float(np.max(np.abs(g - r)) / max(np.max(np.abs(r)), 1e-6)))
    return worst


TOLERANCE = 2e-5  # float32 against float64 (loss) and float32 sums in another order (gradients)


@pytest.mark.parametrize("algo_name", ALGOS)
def test_loss_and_every_gradient_equal_the_official_learner(algo_name, episodes):
    batch, official = episodes
    ref = reference(algo_name, official)
    loss, pieces = ref[0], ref[2]
    # The batch exercises what it is meant to: padding, both weight values, both kinds of ends.
    mask = np.asarray(pieces["mask"])
    assert 0 < mask.sum() < mask.size
    if algo_name in ("ow-qmix", "cw-qmix", "ow-qmix-no-central", "cw-qmix-no-central"):
        ws = np.asarray(pieces["ws"])[mask > 0]
        assert (ws == 1.0).any() and (ws == ALPHA).any(), algo_name
    assert np.isfinite(loss) and loss > 0
    assert disagreement(ref, ours(wqmix.learner, algo_name, batch)) < TOLERANCE


# Single errors planted in learner.py, as (algorithm it shows on, text replaced, replacement).
# Each was found to pass the older constant-network learner tests.
MUTANTS = {
    "central target at its own argmax, not online QMIX's greedy action": (
        "ow-qmix",
        "target_actions = greedy if algo.central or algo.double_q else masked_greedy(target_q, avail)",
        "target_actions = masked_greedy(target_q, avail)"),
    "CW's Q-hat*(s, u*) from the online central networks": (
        "cw-qmix",
        "next_value, current_greedy_value = target_greedy_value[1:], target_greedy_value[:-1]",
        "next_value = target_greedy_value[1:]\n"
        "            online_central_q = unroll_episodes(networks.central_agent, params['central_agent'], inputs)\n"
        "            current_greedy_value = networks.central_mixer.apply(params['central_mixer'], "
        "jnp.where(alive, _pick(online_central_q, greedy), 0.0), state)[:-1]"),
    "CW's Q-hat*(s, u*) evaluated at s'": (
        "cw-qmix",
        "next_value, current_greedy_value = target_greedy_value[1:], target_greedy_value[:-1]",
        "next_value, current_greedy_value = target_greedy_value[1:], target_greedy_value[1:]"),
    "CW's Q-hat*(s, .) at the taken action instead of u*": (
        "cw-qmix",
        "next_value, current_greedy_value = target_greedy_value[1:], target_greedy_value[:-1]",
        "next_value = target_greedy_value[1:]\n"
        "            current_greedy_value = target_mixer(jnp.where(alive[:-1], _pick(target_q[:-1], actions), 0.0), "
        "state[:-1])"),
    "CW's greedy check against the QMIX target network's greedy action": (
        "cw-qmix",
        "w = losses.cw_weights(actions, greedy[:-1],",
        "w = losses.cw_weights(actions, masked_greedy(unroll_episodes(networks.agent, target_params['agent'], "
        "inputs), avail)[:-1],"),
    "CW without Q-hat*: the target Q_tot of the greedy action at s'": (
        "cw-qmix-no-central",
        "next_value, current_greedy_value = target_greedy_value[1:], target_greedy_value[:-1]",
        "next_value, current_greedy_value = target_greedy_value[1:], target_greedy_value[1:]"),
    "greedy action without the availability mask": (
        "qmix",
        "greedy = masked_greedy(jax.lax.stop_gradient(q), avail)",
        "greedy = masked_greedy(jax.lax.stop_gradient(q), jnp.ones_like(avail))"),
}


def mutant_learner(old: str, new: str) -> types.ModuleType:
    source = inspect.getsource(wqmix.learner)
    assert source.count(old) == 1, f"the planted error's target is no longer in learner.py: {old!r}"
    module = types.ModuleType("wqmix.learner_mutant")
    sys.modules[module.__name__] = module  # dataclasses look their module up while defining
    exec(compile(source.replace(old, new), "learner_mutant.py", "exec"), module.__dict__)
    return module


# Three in the default suite, every one with `pytest -m slow` (each compiles a learner of its own).
@pytest.mark.parametrize("name", [name if i < 3 else pytest.param(name, marks=pytest.mark.slow)
                                  for i, name in enumerate(MUTANTS)])
def test_each_planted_error_makes_the_comparison_fail(name, episodes):
    batch, official = episodes
    algo_name, old, new = MUTANTS[name]
    assert disagreement(reference(algo_name, official), ours(mutant_learner(old, new), algo_name, batch)) > 10 * TOLERANCE


def test_utilities_recomputed_for_stored_episodes_equal_those_seen_while_acting(tiny):
    """The learner's utilities for a stored episode (inputs rebuilt from the buffer's fields,
    unrolled over the whole episode) equal the acting ones (`Trainer.utilities` stepped as the
    rollout steps it), and at epsilon = 0 the stored actions are their masked argmax: a shifted
    previous action, an observation one step off or a greedy step off by one would show here."""
    from wqmix.envs.predator_prey import PredatorPreyConfig
    from wqmix.learner import stored_agent_inputs, time_major, unroll_episodes
    from wqmix.train import Trainer

    env = PredatorPreyConfig(grid_size=3, num_agents=2, num_prey=1, time_limit=10, punishment=-0.5)
    trainer = Trainer(dataclasses.replace(tiny("qmix"), env=env))
    params = spread_utilities(trainer.init(jax.random.key(3)).learner.params)["agent"]
    rollout = jax.jit(trainer.rollout, static_argnums=3)
    step = jax.jit(trainer.utilities)
    E = 8
    for epsilon in (0.0, 1.0):
        episodes, _ = rollout(jax.random.key(4), params, jnp.float32(epsilon), E)
        tm = time_major(episodes)
        recomputed = np.asarray(unroll_episodes(trainer.networks.agent, params,
                                                stored_agent_inputs(trainer.networks, tm)))  # (T+1, E, n, A)
        filled = np.asarray(tm.filled)  # (T, E)
        if epsilon == 0.0:  # greedy acting: the stored actions are the argmax of these utilities
            greedy = np.argmax(np.where(np.asarray(tm.avail[:-1]), recomputed[:-1], -np.inf), axis=-1)
            np.testing.assert_array_equal(np.asarray(tm.actions)[filled], greedy[filled])
        # (at epsilon = 1 the previous actions are random, not the greedy ones)
        hidden = jnp.zeros((E, env.num_agents, trainer.networks.agent.hidden))
        prev_actions = jnp.full((E, env.num_agents), -1, jnp.int32)
        for t in range(env.time_limit):
            hidden, q = step(params, hidden, tm.obs[t], prev_actions)
            prev_actions = tm.actions[t]
            np.testing.assert_allclose(np.asarray(q)[filled[t]], recomputed[t][filled[t]], rtol=1e-5, atol=1e-5)
