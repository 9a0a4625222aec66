"""wqmix's Qatten learner against the independent port of the official `qatten_learner.py` with
`QattenMixer` (`official_reference_qatten.py`, itself checked against the PyTorch code): the loss,
the attention regulariser included, and the gradient of every parameter agree on random episodes
with padding, early ends, time-limit cuts and random availability masks, for the QPLEX authors'
options and for the other mixer options; each of a list of single planted errors makes them
disagree."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from library_loss import loss_and_grads
from official_reference import NUMPY, TOLERANCE, disagreement, random_episodes
from official_reference_qatten import QATTEN_SC2_OPTIONS, official_gradients, official_qatten_loss, random_qatten_params
from wqmix.agents import init_params, make_networks
from wqmix.config import ALGORITHMS, NetworkConfig, QattenConfig
from wqmix.envs.base import EnvSpec
from wqmix.learner import pieces_for
from wqmix.learner.pieces import TargetNetworks, pick
from wqmix.learner.qatten import AttentionMix, official_rows

B, T, N_AGENTS, N_ACTIONS, OBS, STATE = 32, 5, 3, 4, 4, 7
HIDDEN, HYPERNET_EMBED, UNIT_DIM, EMBED = 8, 8, 2, 8
GAMMA = 0.9
OPTIONS = {
    "sc2": {},  # qplex_qatten_sc2.yaml
    "two layers, weighted heads": dict(hypernet_layers=2, weighted_head=True),
    "mask dead, no state bias": dict(mask_dead=True, state_bias=False),
    "nonlinear": dict(nonlinear=True),  # compared on episodes without padding (see `batches`)
}
"""Mixer options compared; each on top of `QATTEN_SC2_OPTIONS` (n_head 4, attend_reg_coef 0.001)."""


def port_options(name):
    return {**QATTEN_SC2_OPTIONS, "embed_dim": EMBED, "unit_dim": UNIT_DIM, "attend_reg_coef": 0.05,
            **OPTIONS[name]}


def library_setup(name):
    """wqmix's qatten with the port's sizes and options: (algo, networks). The regulariser's
    coefficient is 50 times the config's, so that an error in it shows above float rounding."""
    o = port_options(name)
    qatten = QattenConfig(n_head=o["n_head"], embed=EMBED, attend_reg_coef=o["attend_reg_coef"],
                          hypernet_layers=o["hypernet_layers"], nonlinear=o["nonlinear"],
                          weighted_head=o["weighted_head"], state_bias=o["state_bias"], mask_dead=o["mask_dead"],
                          unit_dim=UNIT_DIM)
    algo = dataclasses.replace(ALGORITHMS["qatten"], gamma=GAMMA, qatten=qatten)
    spec = EnvSpec(num_agents=N_AGENTS, obs_dim=OBS, state_dim=STATE, num_actions=N_ACTIONS, time_limit=T)
    return algo, make_networks(algo, NetworkConfig(agent_hidden=HIDDEN, hypernet_embed=HYPERNET_EMBED), spec)


def ours(params, target_params, batch_ours, name, pieces=None):
    algo, networks = library_setup(name)
    return loss_and_grads(algo, networks, params, target_params, batch_ours, pieces)


EPISODES = random_episodes(np.random.default_rng(9), B, T, N_AGENTS, OBS, STATE, N_ACTIONS)


def batches(name):
    """(ours, official). With `nonlinear` the official regulariser also reads the utilities the
    agent network gives padding rows, which ours counts as zero (a documented departure): that
    option is compared on the two episodes that run the full T steps (one terminates at T, one is
    cut by the time limit), which have no padding."""
    mine, official = EPISODES
    if name != "nonlinear":
        return mine, official
    return ({k: v[:2] for k, v in mine.items()}, {k: v[:2] for k, v in official.items()})


def setup(name):
    def draw(seed):
        o = {k: v for k, v in port_options(name).items() if k != "attend_reg_coef"}
        return random_qatten_params(np.random.default_rng(seed), N_AGENTS, N_ACTIONS, OBS, STATE, HIDDEN,
                                    HYPERNET_EMBED, **o)
    params = draw(31)
    return params, jax.tree_util.tree_map(lambda p, q: 0.5 * (p + q), params, draw(32))


REFERENCE: dict[str, tuple] = {}


def reference(name):
    if name not in REFERENCE:
        params, target = setup(name)
        REFERENCE[name] = official_gradients(params, target, batches(name)[1], GAMMA, N_AGENTS, N_ACTIONS,
                                             **port_options(name))
    return REFERENCE[name]


def test_the_batch_pads_and_the_regulariser_matters():
    mine, official = EPISODES
    params, target = setup("sc2")
    as64 = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), params)
    loss, parts = official_qatten_loss(NUMPY, as64, as64, official, GAMMA, N_AGENTS, N_ACTIONS, **port_options("sc2"))
    assert 0 < parts["mask"].sum() < parts["mask"].size
    assert parts["q_attend_regs"] > 1e-3 * loss
    assert np.any(official["actions"][:, :-1] == 0)  # mask_dead has agents to mask


def test_the_port_reads_the_parameter_trees_wqmix_builds():
    for name in OPTIONS:
        _, networks = library_setup(name)
        spec = EnvSpec(num_agents=N_AGENTS, obs_dim=OBS, state_dim=STATE, num_actions=N_ACTIONS, time_limit=T)
        built = init_params(networks, spec, jax.random.key(0))
        drawn, _ = setup(name)
        assert jax.tree_util.tree_structure(built) == jax.tree_util.tree_structure(drawn), name
        for a, b in zip(jax.tree_util.tree_leaves(built), jax.tree_util.tree_leaves(drawn)):
            assert a.shape == b.shape


# The QPLEX authors' options and mask_dead in the default suite, every option set with `pytest -m slow`.
@pytest.mark.parametrize("name", [n if n in ("sc2", "mask dead, no state bias") else
                                  pytest.param(n, marks=pytest.mark.slow) for n in OPTIONS])
def test_loss_and_every_gradient_equal_the_official_learner(name):
    params, target = setup(name)
    ref = reference(name)
    assert np.isfinite(ref[0]) and ref[0] > 0
    for path, g in jax.tree_util.tree_leaves_with_path(ref[1]):  # every parameter learns
        assert np.any(np.asarray(g) != 0.0), jax.tree_util.keystr(path)
    assert disagreement(ref, ours(params, target, batches(name)[0], name)) < TOLERANCE


# Single errors planted through test doubles, one per distinctive line of `qatten_learner.train`.
@dataclasses.dataclass(frozen=True)
class Planted(AttentionMix):
    change: str = ""

    def mix(self, params, agents, batch, context):
        mixed = super().mix(params, agents, batch, context)
        regulariser = mixed.losses["attention"]
        if self.change == "regulariser dropped":
            regulariser = 0.0 * regulariser
        if self.change in ("regulariser over real steps", "regulariser of the scaled logits"):
            _, logits, _ = self.networks.mixer.apply(params["mixer"], agents.chosen, batch.state[:-1], batch.actions,
                                                     with_attention=True)  # (T, B, heads, agents)
            rows, longest = official_rows(batch.filled)
            count = batch.filled.shape[1] * longest * logits.shape[-1]
            if self.change == "regulariser over real steps":
                rows, count = batch.filled, jnp.sum(batch.filled) * logits.shape[-1]
            else:
                logits = logits / jnp.sqrt(self.options.embed)
            squares = jnp.where(rows[..., None, None], jnp.square(logits), 0.0).sum()
            regulariser = self.options.attend_reg_coef * squares / count
        return dataclasses.replace(mixed, losses={"attention": regulariser})

    def bootstrap(self, params, target_params, boot, batch, mixed, context):
        if self.change != "target mixer reads the taken actions":
            return super().bootstrap(params, target_params, boot, batch, mixed, context)
        actions = boot.actions[1:]
        chosen = pick(boot.utilities[1:], actions)
        taken = jnp.concatenate([batch.actions[1:], batch.actions[-1:]], axis=0)
        return jax.lax.stop_gradient(self.networks.mixer.apply(target_params["mixer"], chosen, batch.state[1:], taken))


@dataclasses.dataclass(frozen=True)
class UnmaskedGreedyTarget(TargetNetworks):
    """u*(s') as the argmax of the online utilities without the availability mask."""

    def __call__(self, params, target_params, agents, batch, with_greedy_value):
        agents = dataclasses.replace(agents, greedy=jnp.argmax(agents.utilities, axis=-1))
        return super().__call__(params, target_params, agents, batch, with_greedy_value)


MUTANTS = {"regulariser dropped": "sc2", "regulariser over real steps": "sc2",
           "regulariser of the scaled logits": "sc2", "target mixer reads the taken actions": "mask dead, no state bias",
           "target at the target agents' own argmax (double Q off)": "sc2",
           "target u* without the availability mask": "sc2"}
"""Each planted error, and the mixer options under which the comparison is made."""


def mutant_pieces(change, name):
    algo, networks = library_setup(name)
    pieces = pieces_for(algo, networks)
    if change == "target at the target agents' own argmax (double Q off)":
        return dataclasses.replace(pieces, target=dataclasses.replace(pieces.target, at_online_greedy=False))
    if change == "target u* without the availability mask":
        return dataclasses.replace(pieces, target=UnmaskedGreedyTarget(**{
            f.name: getattr(pieces.target, f.name) for f in dataclasses.fields(pieces.target)}))
    return dataclasses.replace(pieces, factorisation=Planted(networks, algo.qatten, change))


@pytest.mark.parametrize("name", ["sc2", pytest.param("mask dead, no state bias", marks=pytest.mark.slow)])
def test_the_double_without_a_change_is_the_learner(name):
    params, target = setup(name)
    assert disagreement(reference(name), ours(params, target, batches(name)[0], name,
                                              mutant_pieces("", name))) < TOLERANCE


# Three in the default suite, every one with `pytest -m slow` (each compiles a learner of its own).
@pytest.mark.parametrize("change", [c if i < 3 else pytest.param(c, marks=pytest.mark.slow)
                                    for i, c in enumerate(MUTANTS)])
def test_each_planted_error_makes_the_comparison_fail(change):
    name = MUTANTS[change]
    params, target = setup(name)
    mine = batches(name)[0]
    assert disagreement(reference(name), ours(params, target, mine, name, mutant_pieces(change, name))) > 10 * TOLERANCE
