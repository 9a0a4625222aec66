"""The learner against an independent port of the official learners (`official_reference.py`):
random networks (mixers that depend on their inputs, utilities that depend on time and on the
previous action), random availability masks, early terminations, time-limit cuts and padding
that holds garbage. The loss and the gradient of every parameter must agree for every algorithm,
and each of a list of single planted errors (test doubles of one piece) must make them disagree.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wqmix.learner.update
from official_reference import NUMPY, TOLERANCE, Ops, disagreement, official_loss, random_episodes
from wqmix.action import masked_greedy
from wqmix.agents import init_params, make_networks
from wqmix.buffer import Episodes
from wqmix.config import ALGORITHMS, NetworkConfig
from wqmix.envs.base import EnvSpec
from wqmix.learner import make_loss, pieces_for, unroll_episodes
from wqmix.learner.pieces import pick
from wqmix.networks import AttentionCentralMixer, _mlp

B, T, N_AGENTS, OBS, STATE, N_ACTIONS = 32, 5, 3, 4, 5, 4
SPEC = EnvSpec(num_agents=N_AGENTS, obs_dim=OBS, state_dim=STATE, num_actions=N_ACTIONS, time_limit=T)
NET = NetworkConfig(agent_hidden=8, mixer_embed=4, hypernet_embed=8, central_agent_hidden=8,
                    central_mixer_hidden=16)
GAMMA, ALPHA = 0.9, 0.3
ALGOS = ["ow-qmix", "cw-qmix", "qmix", "vdn", "iql", "ow-qmix-no-central", "cw-qmix-no-central", "ow-qmix-atten",
         "cw-qmix-atten"]


def official_args(algo_name):
    """(the port's algorithm, its central mixer): the `-atten` algorithms are OW-/CW-QMIX with
    `central_mixer: "atten"`."""
    if algo_name.endswith("-atten"):
        return algo_name.removesuffix("-atten"), "atten"
    return algo_name, "ff"
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
    attention = "central_mixer" in params and "atten_0" in params["central_mixer"]["params"]
    out, v_out = ("net_2", "v_1") if attention else ("out", "v_out")  # the attention central mixer's
    for name, layer, keys in (("agent", "fc2", ["kernel"]), ("central_agent", "fc2", ["kernel"]),
                              ("central_mixer", out, ["kernel", "bias"]), ("central_mixer", v_out, ["kernel", "bias"])):
        for key in keys if name in params else []:  # agents' biases unscaled: no action dominates everywhere
            params[name]["params"][layer][key] = 10.0 * params[name]["params"][layer][key]
    if "central_mixer" in params and not attention:
        fc1 = params["central_mixer"]["params"]["fc1"]
        fc1["kernel"] = fc1["kernel"].at[-N_AGENTS:].multiply(10.0)
    return params


REFERENCE: dict[str, tuple[float, dict, dict]] = {}


def reference(algo_name, official):
    """(loss in float64, gradients, pieces) of the official learner for this algorithm."""
    if algo_name not in REFERENCE:
        _, _, params, target = setup(algo_name)
        def as64(tree):
            return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), tree)
        official64 = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in official.items()}
        name, central_mixer = official_args(algo_name)
        loss, pieces = official_loss(NUMPY, name, as64(params), as64(target), official64, GAMMA, ALPHA,
                                     N_AGENTS, N_ACTIONS, central_mixer)
        grads = jax.jit(jax.grad(lambda p: official_loss(JAX_OPS, name, p, target, official, GAMMA, ALPHA,
                                                         N_AGENTS, N_ACTIONS, central_mixer)[0]))(params)
        REFERENCE[algo_name] = (float(loss), grads, pieces)
    return REFERENCE[algo_name]


def ours(algo_name, batch, pieces=None, networks=None):
    algo, built, params, target = setup(algo_name)
    loss_fn = make_loss(algo, networks or built, pieces)
    (loss, _), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params, target, batch)
    return float(loss), grads


@pytest.mark.parametrize("algo_name", ALGOS)
def test_loss_and_every_gradient_equal_the_official_learner(algo_name, episodes):
    batch, official = episodes
    ref = reference(algo_name, official)
    loss, pieces = ref[0], ref[2]
    # The batch exercises what it is meant to: padding, both weight values, both kinds of ends.
    mask = np.asarray(pieces["mask"])
    assert 0 < mask.sum() < mask.size
    if algo_name not in ("qmix", "vdn", "iql"):
        ws = np.asarray(pieces["ws"])[mask > 0]
        assert (ws == 1.0).any() and (ws == ALPHA).any(), algo_name
    assert np.isfinite(loss) and loss > 0
    assert disagreement(ref, ours(algo_name, batch)) < TOLERANCE


# Single errors planted through the pieces (`wqmix.learner.pieces`): each mutant swaps one piece of
# the algorithm for a test double that makes one mistake, or (the greedy action) patches the one
# function the paper's loss calls. Each was found to pass the older constant-network learner tests.


@dataclasses.dataclass(frozen=True)
class GreedyValueFrom:
    """The real target source, with Q_target(s, u*) (what CW reads) computed another way:
    greedy_value(params, boot, agents, batch) -> (T, B, heads)."""

    real: Any
    greedy_value: Callable

    def __call__(self, params, target_params, agents, batch, with_greedy_value):
        boot = self.real(params, target_params, agents, batch, with_greedy_value)
        return dataclasses.replace(boot, greedy_value=self.greedy_value(params, boot, agents, batch))


@dataclasses.dataclass(frozen=True)
class GreedyFrom:
    """The real weighting, reading another greedy joint action: greedy(batch) -> (T+1, B, agents)."""

    real: Any
    greedy: Callable

    @property
    def needs_greedy_value(self):
        return self.real.needs_greedy_value

    def __call__(self, q_tot, targets, agents, batch, boot):
        return self.real(q_tot, targets, dataclasses.replace(agents, greedy=self.greedy(batch)), batch, boot)


def online_central_greedy_value(networks):
    def value(params, boot, agents, batch):
        q = unroll_episodes(networks.central_agent, params["central_agent"], batch.inputs)
        chosen = jnp.where(batch.alive, pick(q, agents.greedy), 0.0)
        return networks.central_mixer.apply(params["central_mixer"], chosen, batch.state)[:-1]
    return value


def at_taken_action(params, boot, agents, batch):
    return boot.mix(jnp.where(batch.alive[:-1], pick(boot.utilities[:-1], batch.actions), 0.0), batch.state[:-1])


def at_next_state(params, boot, agents, batch):
    return boot.next_value


def target_qmix_greedy(networks, target_params):
    return lambda batch: masked_greedy(unroll_episodes(networks.agent, target_params["agent"], batch.inputs),
                                       batch.avail)


def unmasked_greedy(monkeypatch):
    monkeypatch.setattr(wqmix.learner.update, "masked_greedy",
                        lambda q, avail: masked_greedy(q, jnp.ones_like(avail)))


# name -> (algorithm it shows on, plant(monkeypatch, networks, pieces, target_params) -> pieces).
MUTANTS = {
    "central target at its own argmax, not online QMIX's greedy action": (
        "ow-qmix", lambda mp, net, pieces, target: dataclasses.replace(
            pieces, target=dataclasses.replace(pieces.target, at_online_greedy=False))),
    "CW's Q-hat*(s, u*) from the online central networks": (
        "cw-qmix", lambda mp, net, pieces, target: dataclasses.replace(
            pieces, target=GreedyValueFrom(pieces.target, online_central_greedy_value(net)))),
    "CW's Q-hat*(s, u*) evaluated at s'": (
        "cw-qmix", lambda mp, net, pieces, target: dataclasses.replace(
            pieces, target=GreedyValueFrom(pieces.target, at_next_state))),
    "CW's Q-hat*(s, .) at the taken action instead of u*": (
        "cw-qmix", lambda mp, net, pieces, target: dataclasses.replace(
            pieces, target=GreedyValueFrom(pieces.target, at_taken_action))),
    "CW's greedy check against the QMIX target network's greedy action": (
        "cw-qmix", lambda mp, net, pieces, target: dataclasses.replace(
            pieces, weighting=GreedyFrom(pieces.weighting, target_qmix_greedy(net, target)))),
    "CW without Q-hat*: the target Q_tot of the greedy action at s'": (
        "cw-qmix-no-central", lambda mp, net, pieces, target: dataclasses.replace(
            pieces, target=GreedyValueFrom(pieces.target, at_next_state))),
    "greedy action without the availability mask": (
        "qmix", lambda mp, net, pieces, target: unmasked_greedy(mp) or pieces),
}


class PlantedAttentionCentralMixer(AttentionCentralMixer):
    """The attention central mixer with one line changed: its softmax over `softmax_axis` (-1: the
    heads, not the agents), and V(s) times `state_value` (0: left out; its parameters stay)."""

    softmax_axis: int = -2
    state_value: float = 1.0

    @nn.compact
    def __call__(self, agent_qs, state):
        n = agent_qs.shape[-1]
        attention = _mlp(state, self.hypernet_embed, n * self.hidden, 2, "atten")
        attention = jax.nn.softmax(attention.reshape(*state.shape[:-1], n, self.hidden), axis=self.softmax_axis)
        heads = jnp.einsum("...n,...nh->...h", agent_qs, attention)
        return _mlp(heads, self.hidden, 1, 3, "net") + self.state_value * _mlp(state, self.hidden, 1, 2, "v")


CENTRAL_MIXER_MUTANTS = {"attention central mixer: softmax over the heads, not the agents": ("ow-qmix-atten",
                                                                                            dict(softmax_axis=-1)),
                         "attention central mixer without V(s)": ("cw-qmix-atten", dict(state_value=0.0))}


@pytest.mark.slow
def test_the_planted_central_mixer_without_a_change_is_the_learner(episodes):
    batch, official = episodes
    algo, networks, _, _ = setup("ow-qmix-atten")
    planted = networks._replace(central_mixer=PlantedAttentionCentralMixer(
        hidden=NET.central_mixer_hidden, hypernet_embed=NET.hypernet_embed))
    assert disagreement(reference("ow-qmix-atten", official),
                        ours("ow-qmix-atten", batch, pieces_for(algo, planted), planted)) < TOLERANCE


@pytest.mark.parametrize("name", [n if i == 0 else pytest.param(n, marks=pytest.mark.slow)
                                  for i, n in enumerate(CENTRAL_MIXER_MUTANTS)])
def test_each_planted_error_in_the_attention_central_mixer_makes_the_comparison_fail(name, episodes):
    batch, official = episodes
    algo_name, change = CENTRAL_MIXER_MUTANTS[name]
    algo, networks, _, _ = setup(algo_name)
    planted = networks._replace(central_mixer=PlantedAttentionCentralMixer(
        hidden=NET.central_mixer_hidden, hypernet_embed=NET.hypernet_embed, **change))
    pieces = pieces_for(algo, planted)
    assert disagreement(reference(algo_name, official), ours(algo_name, batch, pieces, planted)) > 10 * TOLERANCE


# Three in the default suite, every one with `pytest -m slow` (each compiles a learner of its own).
@pytest.mark.parametrize("name", [name if i < 3 else pytest.param(name, marks=pytest.mark.slow)
                                  for i, name in enumerate(MUTANTS)])
def test_each_planted_error_makes_the_comparison_fail(name, episodes, monkeypatch):
    batch, official = episodes
    algo_name, plant = MUTANTS[name]
    algo, networks, _, target = setup(algo_name)
    pieces = plant(monkeypatch, networks, pieces_for(algo, networks), target)
    assert disagreement(reference(algo_name, official), ours(algo_name, batch, pieces)) > 10 * TOLERANCE


@pytest.mark.integration  # rollouts of a whole Trainer
def test_utilities_recomputed_for_stored_episodes_equal_those_seen_while_acting(tiny):
    """The learner's utilities for a stored episode (inputs rebuilt from the buffer's fields,
    unrolled over the whole episode) equal the acting ones (`Trainer.utilities` stepped as the
    rollout steps it), and at epsilon = 0 the stored actions are their masked argmax: a shifted
    previous action, an observation one step off or a greedy step off by one would show here."""
    from wqmix.envs.configs import PredatorPreyConfig
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
