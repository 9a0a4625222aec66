"""Building the networks of an algorithm and running the shared agent RNN over agents and time."""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from wqmix.config import AlgoConfig, NetworkConfig
from wqmix.envs.base import EnvSpec
from wqmix.errors import ConfigError
from wqmix.networks import (AGENT_NETWORKS, AttentionCentralMixer, AttentionMixer, CentralMixer, DuelingMixer,
                            IndependentHeads, JointActionNetwork, OmegaNet, PerAgent, Projector, QMixer, VDNMixer)

Params = dict[str, Any]
"""Parameters by network: "agent", "mixer", with a central estimator "central_agent" and
"central_mixer", with the projector write-up's additive term "projector" and (learned omega) "omega"."""

PROJECTOR_PARAMS = ("projector", "omega")
"""The parameters the projector's own learning rate applies to."""


class Networks(NamedTuple):
    """The modules of one algorithm (static; parameters live in `Params`)."""

    agent: nn.Module  # AgentRNN, MLPAgent, or PerAgent of either (has `.hidden`)
    mixer: nn.Module
    central_agent: nn.Module | None
    central_mixer: CentralMixer | AttentionCentralMixer | None
    projector: Projector | None
    omega: OmegaNet | None
    projector_on_actions: bool  # the state-action extension: Q_proj(s, u)
    num_agents: int
    num_actions: int
    obs_last_action: bool
    obs_agent_id: bool

    @property
    def input_dim_extra(self) -> int:
        return self.num_actions * self.obs_last_action + self.num_agents * self.obs_agent_id


def make_networks(algo: AlgoConfig, network: NetworkConfig, spec: EnvSpec) -> Networks:
    mixer: nn.Module
    if algo.mixer == "qmix":
        mixer = QMixer(embed=network.mixer_embed, hypernet_embed=network.hypernet_embed)
    elif algo.mixer == "vdn":
        mixer = VDNMixer()
    elif algo.mixer == "dmaq":  # QPLEX; hypernet_embed as the official `DMAQer` reads it
        q = algo.qplex
        mixer = DuelingMixer(num_actions=spec.num_actions, hypernet_embed=network.hypernet_embed,
                             adv_hypernet_embed=q.adv_hypernet_embed, adv_hypernet_layers=q.adv_hypernet_layers,
                             num_kernel=q.num_kernel, weighted_head=q.weighted_head, is_minus_one=q.is_minus_one)
    elif algo.mixer == "qtran":
        mixer = JointActionNetwork(embed=algo.qtran.embed, network_size=algo.qtran.network_size)
    elif algo.mixer == "qatten":
        mixer = _attention_mixer(algo, network, spec)
    else:
        mixer = IndependentHeads()

    def agent_network(hidden: int) -> nn.Module:
        if network.shared_agent:
            return AGENT_NETWORKS[network.agent](hidden=hidden, num_actions=spec.num_actions)
        return PerAgent(kind=network.agent, hidden=hidden, num_actions=spec.num_actions)

    central_agent = central_mixer = None
    if algo.central:
        central_agent = agent_network(network.central_agent_hidden)
        if algo.central_mixer == "atten":  # official `QMixerCentralAtten`: heads = central_mixing_embed_dim
            central_mixer = AttentionCentralMixer(hidden=network.central_mixer_hidden,
                                                  hypernet_embed=network.hypernet_embed)
        else:
            central_mixer = CentralMixer(hidden=network.central_mixer_hidden)
    projector = omega = None
    p = algo.projector
    if p.kind != "none":  # width: the write-up's `mixing_hidden_dim`, our mixer_embed
        projector = Projector(hidden=network.mixer_embed, heads=p.heads, layer_norm=p.normalization == "layer",
                              last_layer_bound=p.last_layer_init)
        if p.omega == "learned":
            omega = OmegaNet(hidden=network.mixer_embed, heads=p.heads)
    return Networks(
        agent=agent_network(network.agent_hidden),
        mixer=mixer,
        central_agent=central_agent,
        central_mixer=central_mixer,
        projector=projector,
        omega=omega,
        projector_on_actions=p.kind == "state-action",
        num_agents=spec.num_agents,
        num_actions=spec.num_actions,
        obs_last_action=network.obs_last_action,
        obs_agent_id=network.obs_agent_id,
    )


def _attention_mixer(algo: AlgoConfig, network: NetworkConfig, spec: EnvSpec) -> AttentionMixer:
    q = algo.qatten
    unit_dim = q.unit_dim if q.unit_dim is not None else spec.state_unit_dim or spec.state_dim // spec.num_agents
    if unit_dim < 1 or unit_dim * spec.num_agents > spec.state_dim:
        raise ConfigError("algo.qatten.unit_dim", q.unit_dim,
                          f"needs 1 <= unit_dim * agents <= state_dim: the env has {spec.num_agents} agents and "
                          f"state_dim {spec.state_dim}")
    return AttentionMixer(n_head=q.n_head, embed=q.embed, hypernet_embed=network.hypernet_embed, unit_dim=unit_dim,
                          hypernet_layers=q.hypernet_layers, nonlinear=q.nonlinear, weighted_head=q.weighted_head,
                          state_bias=q.state_bias, mask_dead=q.mask_dead)


def agent_inputs(networks: Networks, obs: jax.Array, prev_actions: jax.Array) -> jax.Array:
    """obs ‖ one-hot previous action ‖ one-hot agent id.

    obs: (..., agents, obs_dim) float; prev_actions: (..., agents) int, -1 before the first step
    (one-hot of -1 is all zeros). Returns (..., agents, obs_dim + extra).
    """
    parts = [obs]
    if networks.obs_last_action:
        parts.append(jax.nn.one_hot(prev_actions, networks.num_actions, dtype=obs.dtype))
    if networks.obs_agent_id:
        ids = jnp.eye(networks.num_agents, dtype=obs.dtype)
        parts.append(jnp.broadcast_to(ids, (*obs.shape[:-1], networks.num_agents)))
    return jnp.concatenate(parts, axis=-1)


def unroll_agents(agent: nn.Module, params: Any, hidden: jax.Array, inputs: jax.Array,
                  resets: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Run the agent network (shared, or one per agent) for every agent over time.

    hidden: (B, agents, H); inputs: (T, B, agents, in); resets (T, B) bool or None: the hidden
    state is zeroed before the steps where a new episode starts (packed batches). Returns
    (hidden (B, agents, H), q (T, B, agents, actions)); an agent network with `all_hidden`
    returns every step's hidden state, (T, B, agents, H). A shared network folds the agents into
    the batch.
    """
    if isinstance(agent, PerAgent):  # its own parameters per agent: the agent axis stays
        return agent.apply(params, hidden, inputs, resets)
    T, B, n, _ = inputs.shape
    if resets is not None:  # (T, B) -> (T, B * n), agent axis inner as in the inputs
        resets = jnp.repeat(resets, n, axis=1)
    h, q = agent.apply(params, hidden.reshape(B * n, -1), inputs.reshape(T, B * n, -1), resets)
    return h.reshape(*h.shape[:-2], B, n, -1), q.reshape(T, B, n, -1)


def init_params(networks: Networks, spec: EnvSpec, key: jax.Array) -> Params:
    """Fresh parameters of every network of the algorithm."""
    n = spec.num_agents
    in_dim = spec.obs_dim + networks.input_dim_extra
    dummy_inputs = jnp.zeros((1, 1, in_dim))
    dummy_qs = jnp.zeros((1, n))
    dummy_state = jnp.zeros((1, spec.state_dim))
    keys = jax.random.split(key, 4)

    def init_agent(agent: nn.Module, key: jax.Array) -> Any:
        if isinstance(agent, PerAgent):
            return agent.init(key, jnp.zeros((1, n, agent.hidden)), jnp.zeros((1, 1, n, in_dim)))
        return agent.init(key, jnp.zeros((1, agent.hidden)), dummy_inputs)

    if isinstance(networks.mixer, JointActionNetwork):  # QTRAN: reads hidden states and one-hot actions
        mixer_inputs = (dummy_state, jnp.zeros((1, n, networks.agent.hidden)), jnp.zeros((1, n, spec.num_actions)))
    else:
        mixer_inputs = (dummy_qs, dummy_state)
    params: Params = {
        "agent": init_agent(networks.agent, keys[0]),
        "mixer": networks.mixer.init(keys[1], *mixer_inputs),
    }
    if networks.central_agent is not None:
        params["central_agent"] = init_agent(networks.central_agent, keys[2])
        params["central_mixer"] = networks.central_mixer.init(keys[3], dummy_qs, dummy_state)
    # Keys of the write-up's networks folded in, so that the others' stay those of earlier versions.
    if networks.projector is not None:
        params["projector"] = networks.projector.init(jax.random.fold_in(key, 4),
                                                      jnp.zeros((1, projector_input_dim(networks, spec))))
    if networks.omega is not None:
        params["omega"] = networks.omega.init(jax.random.fold_in(key, 5), dummy_state)
    return params


def projector_input_dim(networks: Networks, spec: EnvSpec) -> int:
    return spec.state_dim + (spec.num_agents * spec.num_actions if networks.projector_on_actions else 0)


def projector_inputs(networks: Networks, state: jax.Array, actions: jax.Array) -> jax.Array:
    """s, or s || one-hot joint action (state-action extension). state (..., s); actions
    (..., agents) int. Returns (..., in)."""
    if not networks.projector_on_actions:
        return state
    one_hot = jax.nn.one_hot(actions, networks.num_actions, dtype=state.dtype)
    return jnp.concatenate([state, one_hot.reshape(*actions.shape[:-1], -1)], axis=-1)
