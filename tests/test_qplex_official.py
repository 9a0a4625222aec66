"""The independent port of the official QPLEX learner (`official_reference_qplex.py`) checked on
its own: NumPy float64 and jax.numpy float32 give the same loss, the random batch exercises what a
comparison needs (padding, early ends, an online greedy action at s' that is not the target
agents' own argmax, so that the target's advantage term is not zero), QPLEX's IGM identity holds
(Q_tot <= V_tot, with equality at the greedy joint action), and every mixer parameter gets a finite,
non-zero gradient. wqmix's qplex loss and every gradient equal the port's (`ours` against `official_gradients`), and
each of a list of single planted errors (test doubles of QPLEX's factorisation) makes them disagree.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from library_loss import loss_and_grads
from official_reference import NUMPY, TOLERANCE, disagreement, random_episodes
from wqmix.action import masked_greedy
from wqmix.agents import init_params, make_networks
from wqmix.config import ALGORITHMS, NetworkConfig, QplexConfig
from wqmix.envs.base import EnvSpec
from wqmix.learner import pieces_for
from wqmix.learner.pieces import Mixed
from wqmix.learner.qplex import DuelingMix
from official_reference_qplex import (JAX_OPS, dmaq_mixer, official_gradients, official_qplex_loss,
                                      random_qplex_params)

B, T, N_AGENTS, N_ACTIONS, OBS, STATE = 32, 5, 3, 4, 4, 5
HIDDEN, HYPERNET_EMBED, ADV_HYPERNET_EMBED = 8, 8, 8
GAMMA = 0.9
CONFIGS = [(3, 3), (10, 3), (3, 1), (3, 2)]  # (num_kernel, adv_hypernet_layers); qplex.yaml: (10, 3)


def library_setup(num_kernel, layers):
    """wqmix's qplex with the port's sizes: (algo, networks)."""
    algo = dataclasses.replace(ALGORITHMS["qplex"], gamma=GAMMA,
                               qplex=QplexConfig(num_kernel=num_kernel, adv_hypernet_layers=layers,
                                                 adv_hypernet_embed=ADV_HYPERNET_EMBED))
    net = NetworkConfig(agent_hidden=HIDDEN, hypernet_embed=HYPERNET_EMBED)
    spec = EnvSpec(num_agents=N_AGENTS, obs_dim=OBS, state_dim=STATE, num_actions=N_ACTIONS, time_limit=T)
    return algo, make_networks(algo, net, spec)


def ours(params, target_params, batch_ours, num_kernel=10, layers=3, pieces=None):
    """wqmix's loss for algo "qplex" and its gradient, on the same parameters and episodes."""
    algo, networks = library_setup(num_kernel, layers)
    return loss_and_grads(algo, networks, params, target_params, batch_ours, pieces)


@pytest.fixture(scope="module")
def episodes():
    return random_episodes(np.random.default_rng(7), B, T, N_AGENTS, OBS, STATE, N_ACTIONS)


def setup(num_kernel, layers):
    """Online parameters and target parameters that differ from them (as two copies do) but stay
    close in scale."""
    def draw(seed):
        return random_qplex_params(np.random.default_rng(seed), N_AGENTS, N_ACTIONS, OBS, STATE, HIDDEN,
                                   HYPERNET_EMBED, ADV_HYPERNET_EMBED, num_kernel, layers)
    params = draw(11)
    target = jax.tree_util.tree_map(lambda p, q: 0.5 * (p + q), params, draw(12))
    return params, target


def as64(tree):
    return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), tree)


def numpy_loss(num_kernel, layers, official):
    params, target = setup(num_kernel, layers)
    official64 = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in official.items()}
    loss, pieces = official_qplex_loss(NUMPY, as64(params), as64(target), official64, GAMMA, N_AGENTS, N_ACTIONS,
                                       num_kernel, layers)
    return float(loss), pieces, params, target, official64


@pytest.mark.parametrize("num_kernel,layers", CONFIGS)
def test_float64_and_float32_losses_agree(num_kernel, layers, episodes):  # (a)
    _, official = episodes
    loss64, _, params, target, _ = numpy_loss(num_kernel, layers, official)
    loss32 = jax.jit(lambda p, q: official_qplex_loss(JAX_OPS, p, q, official, GAMMA, N_AGENTS, N_ACTIONS,
                                                      num_kernel, layers)[0])(params, target)
    assert np.isfinite(loss64) and loss64 > 0
    assert abs(float(loss32) - loss64) / loss64 < 2e-5


def test_the_batch_exercises_padding_and_the_target_advantage(episodes):  # (b)
    _, official = episodes
    _, pieces, params, target, official64 = numpy_loss(3, 3, official)
    mask = pieces["mask"][..., 0]
    assert 0 < mask.sum() < mask.size
    # transitions that bootstrap: inside the mask and not terminated
    boot = (mask > 0) & (official64["terminated"][:, :-1, 0] == 0)
    differs = (pieces["cur_max_actions"] != pieces["target_max_actions"]).any(axis=2)  # (B, T)
    assert (boot & differs).any()
    target_adv = pieces["target_adv"][..., 0]
    assert np.all(np.abs(target_adv[boot & differs]) > 1e-6)
    assert np.all(target_adv[boot & ~differs] == 0.0)
    # and the online advantage: zero where every agent took its masked greedy action, else not
    all_greedy = (official64["actions"][:, :-1, :, 0] == pieces["max_action_index"]).all(axis=2)
    ans_adv = pieces["ans_adv"][..., 0]
    assert np.all(ans_adv[(mask > 0) & all_greedy] == 0.0)
    assert np.all(np.abs(ans_adv[(mask > 0) & ~all_greedy]) > 1e-6)


@pytest.mark.parametrize("num_kernel,layers", CONFIGS[:2])
def test_igm_q_tot_at_most_v_tot_with_equality_at_the_greedy_action(num_kernel, layers, episodes):
    """Q_tot = sum_i (w_i Q_i + v_i) + sum_i (lambda_i - 1) A_i = V_tot + sum_i lambda_i A_i with
    A_i = w_i (Q_i - max Q_i) <= 0 and lambda_i > 0: Q_tot <= V_tot = Q_tot(greedy)."""
    _, official = episodes
    _, pieces, params, _, official64 = numpy_loss(num_kernel, layers, official)
    mask = pieces["mask"][..., 0] > 0
    v_tot = dmaq_mixer(NUMPY, as64(params)["mixer"], pieces["max_action_qvals"], official64["state"][:, :-1],
                       is_v=True, num_kernel=num_kernel, layers=layers)[..., 0]
    q_tot = pieces["q_tot"][..., 0]
    all_greedy = (official64["actions"][:, :-1, :, 0] == pieces["max_action_index"]).all(axis=2)
    assert (mask & all_greedy).any() and (mask & ~all_greedy).any()
    assert np.all(q_tot[mask] <= v_tot[mask] + 1e-9)
    np.testing.assert_allclose(q_tot[mask & all_greedy], v_tot[mask & all_greedy], rtol=0, atol=1e-9)
    assert (q_tot[mask] < v_tot[mask] - 1e-6).any()


@pytest.mark.parametrize("num_kernel,layers", CONFIGS[:2])
def test_every_gradient_is_finite_and_every_mixer_gradient_non_zero(num_kernel, layers, episodes):  # (c)
    _, official = episodes
    params, target = setup(num_kernel, layers)
    loss, grads = official_gradients(params, target, official, GAMMA, N_AGENTS, N_ACTIONS)
    assert np.isfinite(loss) and loss > 0
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(
        jax.tree_util.tree_map(np.asarray, params))
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        assert np.all(np.isfinite(np.asarray(g))), jax.tree_util.keystr(path)
    for name, layer in grads["mixer"]["params"].items():
        for key, g in layer.items():
            assert np.any(np.asarray(g) != 0.0), (name, key)


# ---- wqmix's qplex against the port ------------------------------------------------------------


def test_the_port_reads_the_parameter_trees_wqmix_builds():
    _, networks = library_setup(3, 3)
    spec = EnvSpec(num_agents=N_AGENTS, obs_dim=OBS, state_dim=STATE, num_actions=N_ACTIONS, time_limit=T)
    built = init_params(networks, spec, jax.random.key(0))
    drawn, _ = setup(3, 3)
    assert jax.tree_util.tree_structure(built) == jax.tree_util.tree_structure(drawn)
    for a, b in zip(jax.tree_util.tree_leaves(built), jax.tree_util.tree_leaves(drawn)):
        assert a.shape == b.shape


REFERENCE: dict[tuple[int, int], tuple[float, dict]] = {}


def reference(num_kernel, layers, official):
    if (num_kernel, layers) not in REFERENCE:
        params, target = setup(num_kernel, layers)
        REFERENCE[num_kernel, layers] = official_gradients(params, target, official, GAMMA, N_AGENTS, N_ACTIONS)
    return REFERENCE[num_kernel, layers]


@pytest.mark.parametrize("num_kernel,layers", [(10, 3), (3, 1)])
def test_loss_and_every_gradient_equal_the_official_learner(num_kernel, layers, episodes):
    mine_batch, official = episodes
    params, target = setup(num_kernel, layers)
    ref = reference(num_kernel, layers, official)
    assert np.isfinite(ref[0]) and ref[0] > 0
    assert disagreement(ref, ours(params, target, mine_batch, num_kernel, layers)) < TOLERANCE


# Single errors planted through test doubles of QPLEX's factorisation, one per distinctive line
# of `dmaq_qatten_learner.sub_train`.
class MaxAtTakenActions(DuelingMix):
    """`max_action_qvals` at the taken actions, not the masked argmax: no online advantage."""

    def mix(self, params, agents, batch, context):
        return Mixed(q_tot=self._mixed(params["mixer"], agents.utilities[:-1], batch.actions, batch.actions,
                                       batch.alive[:-1], batch.state[:-1]))


class UnmaskedMax(DuelingMix):
    """`x_mac_out[avail_actions == 0] = -9999999` left out of the online max."""

    def mix(self, params, agents, batch, context):
        greedy = masked_greedy(jax.lax.stop_gradient(agents.utilities[:-1]), jnp.ones_like(batch.avail[:-1]))
        return Mixed(q_tot=self._mixed(params["mixer"], agents.utilities[:-1], batch.actions, greedy,
                                       batch.alive[:-1], batch.state[:-1]))


class OnlineGreedyAsTargetMax(DuelingMix):
    """`target_max_qvals` read at the online greedy action, not the target agents' own max."""

    def bootstrap(self, params, target_params, boot, batch, mixed, context):
        return self._mixed(target_params["mixer"], boot.utilities[1:], boot.actions[1:], boot.actions[1:],
                           batch.alive[1:], batch.state[1:])


class TargetAdvantageDropped(DuelingMix):
    """The target mixer called with `is_v=True` only (no `target_adv`)."""

    def bootstrap(self, params, target_params, boot, batch, mixed, context):
        chosen = jnp.where(batch.alive[1:], jnp.take_along_axis(boot.utilities[1:], boot.actions[1:, ..., None],
                                                                 -1)[..., 0], 0.0)
        return self.networks.mixer.apply(target_params["mixer"], chosen, batch.state[1:])


def mutant_pieces(name, networks, pieces):
    if name == "target at the target agents' own argmax (double Q off)":
        return dataclasses.replace(pieces, target=dataclasses.replace(pieces.target, at_online_greedy=False))
    double = {"online max at the taken actions": MaxAtTakenActions,
              "online max without the availability mask": UnmaskedMax,
              "target max at the online greedy action": OnlineGreedyAsTargetMax,
              "target advantage dropped": TargetAdvantageDropped}[name]
    return dataclasses.replace(pieces, factorisation=double(networks))


MUTANTS = ["online max at the taken actions", "online max without the availability mask",
           "target at the target agents' own argmax (double Q off)", "target max at the online greedy action",
           "target advantage dropped"]


# Two in the default suite, every one with `pytest -m slow` (each compiles a learner of its own).
@pytest.mark.parametrize("name", [name if i < 2 else pytest.param(name, marks=pytest.mark.slow)
                                  for i, name in enumerate(MUTANTS)])
def test_each_planted_error_makes_the_comparison_fail(name, episodes):
    mine_batch, official = episodes
    params, target = setup(10, 3)
    algo, networks = library_setup(10, 3)
    pieces = mutant_pieces(name, networks, pieces_for(algo, networks))
    assert disagreement(reference(10, 3, official), ours(params, target, mine_batch, 10, 3, pieces)) > 10 * TOLERANCE
