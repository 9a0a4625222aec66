"""wqmix's QTRAN learner against the independent port of the official `qtran_learner.py`
(`official_reference_qtran.py`, itself checked against the PyTorch code): the loss and the gradient
of every parameter agree on random episodes with padding, early ends, time-limit cuts and random
availability masks; the batch exercises each of the three losses; and each of a list of single
planted errors (test doubles of QTRAN's factorisation or its target source) makes them disagree."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from library_loss import loss_and_grads
from official_reference import NUMPY, TOLERANCE, disagreement, random_episodes
from official_reference_qtran import (JAX_OPS, LAYERS, official_gradients, official_qtran_loss,
                                     random_qtran_params)
from wqmix import losses
from wqmix.action import masked_greedy
from wqmix.agents import init_params, make_networks
from wqmix.config import ALGORITHMS, NetworkConfig, QtranConfig
from wqmix.envs.base import EnvSpec
from wqmix.learner import pieces_for
from wqmix.learner.pieces import Mixed, pick
from wqmix.learner.qtran import JointActionValue

B, T, N_AGENTS, N_ACTIONS, OBS, STATE = 32, 5, 3, 4, 4, 5
HIDDEN, EMBED = 8, 16
GAMMA = 0.9


def library_setup(network_size="small", options="official"):
    """wqmix's qtran with the port's sizes: (algo, networks)."""
    opt, nopt = OPTIONS[options]
    algo = dataclasses.replace(ALGORITHMS["qtran"], gamma=GAMMA,
                               qtran=QtranConfig(embed=EMBED, network_size=network_size, opt_loss=opt,
                                                 nopt_min_loss=nopt))
    spec = EnvSpec(num_agents=N_AGENTS, obs_dim=OBS, state_dim=STATE, num_actions=N_ACTIONS, time_limit=T)
    return algo, make_networks(algo, NetworkConfig(agent_hidden=HIDDEN), spec)


OPTIONS = {"official": (1.0, 0.1), "td only": (0.0, 0.0), "nopt only": (0.0, 1.0)}
"""(opt_loss, nopt_min_loss): qtran.yaml's, and two that isolate a loss term, so that an error in
a small term is not hidden under a large one."""


def ours(params, target_params, batch_ours, network_size="small", pieces=None, options="official"):
    """wqmix's loss for algo "qtran" and its gradient, on the same parameters and episodes."""
    algo, networks = library_setup(network_size, options)
    return loss_and_grads(algo, networks, params, target_params, batch_ours, pieces)


@pytest.fixture(scope="module")
def episodes():
    return random_episodes(np.random.default_rng(5), B, T, N_AGENTS, OBS, STATE, N_ACTIONS)


def as64(tree):
    return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), tree)


def setup(network_size="small"):
    """Online parameters and target parameters that differ from them but stay close in scale. V_jt's
    output bias is set so that L_nopt's clamp is active on about half of the real steps."""
    def draw(seed):
        return random_qtran_params(np.random.default_rng(seed), N_AGENTS, N_ACTIONS, OBS, STATE, HIDDEN, EMBED,
                                   network_size)
    params = draw(21)
    official = random_episodes(np.random.default_rng(5), B, T, N_AGENTS, OBS, STATE, N_ACTIONS)[1]
    _, parts = official_qtran_loss(NUMPY, as64(params), as64(params), official, GAMMA, N_AGENTS, N_ACTIONS,
                                   network_size=network_size)
    nopt = parts["chosen_action_qvals"].sum(2) - parts["joint_qs"].reshape(B, T) + parts["vs"].reshape(B, T)
    last = f"v_{LAYERS[network_size] - 1}"
    params["mixer"]["params"][last]["bias"] -= np.float32(np.median(nopt[parts["mask"][..., 0] > 0]))
    return params, jax.tree_util.tree_map(lambda p, q: 0.5 * (p + q), params, draw(22))


def test_float64_and_float32_losses_agree_and_the_batch_exercises_each_loss(episodes):
    _, official = episodes
    params, target = setup()
    official64 = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in official.items()}
    loss64, parts = official_qtran_loss(NUMPY, as64(params), as64(target), official64, GAMMA, N_AGENTS, N_ACTIONS)
    loss32 = jax.jit(lambda p, q: official_qtran_loss(JAX_OPS, p, q, official, GAMMA, N_AGENTS, N_ACTIONS)[0])(
        params, target)
    assert np.isfinite(loss64) and abs(float(loss32) - loss64) / loss64 < 2e-5
    mask = parts["mask"][..., 0] > 0
    assert 0 < mask.sum() < mask.size
    assert parts["td_loss"] > 0 and parts["opt_loss"] > 0 and parts["nopt_loss"] > 0
    # L_nopt's clamp is active on some real steps and not on others.
    nopt = parts["chosen_action_qvals"].sum(2) - parts["joint_qs"].reshape(B, T) + parts["vs"].reshape(B, T)
    assert (nopt[mask] < 0).any() and (nopt[mask] > 0).any()
    # Double Q matters: the online argmax at s' is not always the target agents' own.
    differs = (parts["max_actions_current"][:, 1:] != parts["target_max_actions"][:, 1:]).any(-1)
    assert (differs & mask).any()


def test_the_port_reads_the_parameter_trees_wqmix_builds():
    for size in ("small", "big"):
        _, networks = library_setup(size)
        spec = EnvSpec(num_agents=N_AGENTS, obs_dim=OBS, state_dim=STATE, num_actions=N_ACTIONS, time_limit=T)
        built = init_params(networks, spec, jax.random.key(0))
        drawn, _ = setup(size)
        assert jax.tree_util.tree_structure(built) == jax.tree_util.tree_structure(drawn)
        for a, b in zip(jax.tree_util.tree_leaves(built), jax.tree_util.tree_leaves(drawn)):
            assert a.shape == b.shape


REFERENCE: dict[tuple[str, str], tuple] = {}


def reference(network_size, official, options="official"):
    if (network_size, options) not in REFERENCE:
        params, target = setup(network_size)
        opt, nopt = OPTIONS[options]
        REFERENCE[network_size, options] = official_gradients(params, target, official, GAMMA, N_AGENTS, N_ACTIONS,
                                                              opt_loss=opt, nopt_min_loss=nopt)
    return REFERENCE[network_size, options]


@pytest.mark.parametrize("network_size, options", [
    ("small", "official"), pytest.param("big", "official", marks=pytest.mark.slow), ("small", "td only"),
    ("small", "nopt only")])
def test_loss_and_every_gradient_equal_the_official_learner(network_size, options, episodes):
    mine_batch, official = episodes
    params, target = setup(network_size)
    ref = reference(network_size, official, options)
    assert np.isfinite(ref[0]) and ref[0] > 0
    if options == "official":  # every parameter learns
        for name, g in jax.tree_util.tree_leaves_with_path(ref[1]):
            assert np.any(np.asarray(g) != 0.0), jax.tree_util.keystr(name)
    assert disagreement(ref, ours(params, target, mine_batch, network_size, options=options)) < TOLERANCE


# Single errors planted through test doubles, one per distinctive line of `qtran_learner.train`.
class Variant(JointActionValue):
    """QTRAN's factorisation with one line changed (`change`)."""

    change: str = ""

    def mix(self, params, agents, batch, context):
        state, greedy = batch.state[:-1], agents.greedy[:-1]
        hidden = agents.hidden[:-1]
        if self.change == "hidden states detached":
            hidden = jax.lax.stop_gradient(hidden)
        joint_q, v = self._joint(params["mixer"], state, hidden, batch.actions)
        at = batch.actions if self.change == "opt at the taken actions" else greedy
        if self.change == "opt max without the availability mask":
            at = masked_greedy(jax.lax.stop_gradient(agents.utilities[:-1]), jnp.ones_like(batch.avail[:-1]))
        max_joint_q = self._joint(params["mixer"], state, hidden, at)[0]
        if self.change != "max_joint_qs not detached":
            max_joint_q = jax.lax.stop_gradient(max_joint_q)
        max_sum = pick(agents.utilities[:-1], at).sum(-1, keepdims=True)
        joint_in_nopt = joint_q if self.change == "joint_qs not detached in nopt" else jax.lax.stop_gradient(joint_q)
        nopt = agents.chosen.sum(-1, keepdims=True) - joint_in_nopt + v
        if self.change != "nopt not clamped":
            nopt = jnp.minimum(nopt, 0.0)
        mask, zeros = batch.filled[..., None], jnp.zeros_like(v)
        opt_loss = losses.masked_weighted_mse(max_sum - max_joint_q + v, zeros, jnp.ones_like(v), mask)
        nopt_loss = losses.masked_weighted_mse(nopt, zeros, jnp.ones_like(v), mask)
        return Mixed(q_tot=joint_q, losses={"opt": self.options.opt_loss * opt_loss,
                                            "nopt": self.options.nopt_min_loss * nopt_loss})

    def bootstrap(self, params, target_params, boot, batch, mixed, context):
        hidden = boot.hidden[1:]
        if self.change == "target reads the online hidden states":
            hidden = mixed.metrics["online_hidden"][1:]
        return jax.lax.stop_gradient(self._joint(target_params["mixer"], batch.state[1:], hidden,
                                                 boot.actions[1:])[0])


@dataclasses.dataclass(frozen=True)
class VariantWithHidden(Variant):
    """Passes the online hidden states to `bootstrap` through the metrics (for that one error)."""

    def mix(self, params, agents, batch, context):
        mixed = super().mix(params, agents, batch, context)
        return dataclasses.replace(mixed, metrics={"online_hidden": jax.lax.stop_gradient(agents.hidden)})


MUTANTS = {"hidden states detached": "td only", "opt at the taken actions": "official",
           "opt max without the availability mask": "official", "max_joint_qs not detached": "official",
           "joint_qs not detached in nopt": "nopt only", "nopt not clamped": "nopt only",
           "target reads the online hidden states": "td only",
           "target at the target agents' own argmax (double Q off)": "td only"}
"""Each planted error, and the loss options under which the comparison is made."""


def mutant_pieces(name, networks, pieces, options):
    if name == "target at the target agents' own argmax (double Q off)":
        return dataclasses.replace(pieces, target=dataclasses.replace(pieces.target, at_online_greedy=False))
    cls = VariantWithHidden if name == "target reads the online hidden states" else Variant
    variant = dataclasses.make_dataclass("Planted", [("change", str, dataclasses.field(default=name))], bases=(cls,),
                                         frozen=True)
    return dataclasses.replace(pieces, factorisation=variant(networks, options))


@pytest.mark.parametrize("options", [o if o == "official" else pytest.param(o, marks=pytest.mark.slow)
                                     for o in OPTIONS])
def test_the_variant_without_a_change_is_the_learner(options, episodes):
    """The test double itself, unchanged, agrees: a failing mutant fails for its planted line."""
    mine_batch, official = episodes
    params, target = setup()
    algo, networks = library_setup(options=options)
    pieces = mutant_pieces("none", networks, pieces_for(algo, networks), algo.qtran)
    ref = reference("small", official, options)
    assert disagreement(ref, ours(params, target, mine_batch, pieces=pieces, options=options)) < TOLERANCE


# Three in the default suite, every one with `pytest -m slow` (each compiles a learner of its own).
@pytest.mark.parametrize("name", [name if i < 3 else pytest.param(name, marks=pytest.mark.slow)
                                  for i, name in enumerate(MUTANTS)])
def test_each_planted_error_makes_the_comparison_fail(name, episodes):
    mine_batch, official = episodes
    params, target = setup()
    options = MUTANTS[name]
    algo, networks = library_setup(options=options)
    pieces = mutant_pieces(name, networks, pieces_for(algo, networks), algo.qtran)
    ref = reference("small", official, options)
    assert disagreement(ref, ours(params, target, mine_batch, pieces=pieces, options=options)) > 10 * TOLERANCE
