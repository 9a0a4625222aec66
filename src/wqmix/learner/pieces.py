"""The pieces an algorithm is made of, and what each may read.

The paper's update (`wqmix.learner.update.make_loss`) is written once. An algorithm is a choice
of three pieces, `Pieces`:

- a `Factorisation`: how the agents' utilities become Q_tot(s, u) (QMIX's monotonic mixer, VDN's
  sum, independent heads, the projector family of `wqmix.learner.projector`), and how a
  bootstrap value V(s') is finished from the target networks' values;
- a `TargetSource`: which target networks give V(s') and at which joint action (the paper's
  target Q-hat* at online QMIX's greedy action, or the algorithm's own target networks);
- a `Weighting`: the weight of each squared TD error (none, OW, CW, the greedy-only weights).

Arrays are time-major: T stored transitions, T + 1 stored steps (the last one only bootstraps),
B episodes (or windows), `agents`, `actions`; `heads` is 1 for a mixed Q_tot and `agents` for
independent learners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

import jax
import jax.numpy as jnp

from wqmix import losses
from wqmix.action import masked_greedy
from wqmix.agents import Networks, Params, agent_inputs, unroll_agents
from wqmix.buffer import Episodes

Arrays = Mapping[str, jax.Array]


def pick(q: jax.Array, actions: jax.Array) -> jax.Array:
    """q: (..., actions); actions: (...) int -> (...): the utility of the given action."""
    return jnp.take_along_axis(q, actions[..., None], axis=-1)[..., 0]


def time_major(batch: Episodes) -> Episodes:
    """Every field with its batch and time axes swapped: (T or T+1, B, ...)."""
    return jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), batch)


def stored_agent_inputs(networks: Networks, batch: Episodes, starts: jax.Array | None = None) -> jax.Array:
    """The agent networks' inputs at every stored step, as they were while acting: obs_t ‖
    one-hot u_{t-1} ‖ one-hot id. batch time-major; starts (T+1, B) bool or None: where
    episodes begin inside a packed row (no previous action there). Returns (T+1, B, agents, in)."""
    prev_actions = jnp.concatenate([jnp.full_like(batch.actions[:1], -1), batch.actions], axis=0)
    if starts is not None:
        prev_actions = jnp.where(starts[..., None], -1, prev_actions)
    return agent_inputs(networks, batch.obs, prev_actions)


def unroll_episodes(agent, params, inputs: jax.Array, starts: jax.Array | None = None) -> jax.Array:
    """Utilities of an agent network run over whole stored episodes from a zero hidden state
    (zeroed again where `starts`, (T+1, B) bool, marks a packed episode's first step).
    inputs (T+1, B, agents, in) -> (T+1, B, agents, actions)."""
    return unroll_with_hidden(agent, params, inputs, starts)[1]


def unroll_with_hidden(agent, params, inputs: jax.Array, starts: jax.Array | None = None
                       ) -> tuple[jax.Array, jax.Array]:
    """As `unroll_episodes`, with the hidden state after every step (the RNN's h_t, the MLP
    agent's hidden layer): ((T+1, B, agents, H), (T+1, B, agents, actions)). Costs nothing when
    the hidden states are not read: the compiled update drops what it does not use."""
    B, n = inputs.shape[1], inputs.shape[2]
    hidden = jnp.zeros((B, n, agent.hidden))
    return unroll_agents(agent.clone(all_hidden=True), params, hidden, inputs, starts)


# ---- what the pieces read ---------------------------------------------------------------------


@dataclass(frozen=True)
class Transitions:
    """A sampled batch, time-major, as every piece reads it."""

    state: jax.Array  # (T+1, B, state)
    avail: jax.Array  # (T+1, B, agents, actions) bool
    alive: jax.Array  # (T+1, B, agents) bool: departed agents' utilities are zeroed
    actions: jax.Array  # (T, B, agents) int
    reward: jax.Array  # (T, B)
    terminated: jax.Array  # (T, B) bool
    filled: jax.Array  # (T, B) bool: real steps, not padding
    inputs: jax.Array  # (T+1, B, agents, in): the agent networks' inputs, as while acting
    starts: jax.Array | None  # (T+1, B) bool: where packed episodes begin; None: one per row

    @staticmethod
    def of(networks: Networks, batch: Episodes, starts: jax.Array | None) -> Transitions:
        """From a batch as the replay samples it, (B, T or T+1, ...), and `starts` (B, T+1)."""
        tm = time_major(batch)
        starts = None if starts is None else jnp.swapaxes(starts, 0, 1)
        return Transitions(state=tm.state, avail=tm.avail, alive=tm.alive, actions=tm.actions, reward=tm.reward,
                           terminated=tm.terminated, filled=tm.filled,
                           inputs=stored_agent_inputs(networks, tm, starts), starts=starts)


@dataclass(frozen=True)
class Agents:
    """The online agents' utilities and what the update derives from them."""

    utilities: jax.Array  # (T+1, B, agents, actions)
    greedy: jax.Array  # (T+1, B, agents) int: the masked argmax u*(s), no gradient
    chosen: jax.Array  # (T, B, agents): utilities of the taken actions, 0 for departed agents
    hidden: jax.Array  # (T+1, B, agents, H): the agent network's hidden state after each step


@dataclass(frozen=True)
class Context:
    """The learner's state that a piece may read."""

    steps: jax.Array | int  # () gradient updates before this one
    carry: Arrays  # what the factorisation kept from the previous update (`Factorisation.init_carry`)
    key: jax.Array | None  # randomness for a piece that samples (None: it must not)


@dataclass(frozen=True)
class Mixed:
    """What a factorisation makes of the online utilities."""

    q_tot: jax.Array  # (T, B, heads): Q_tot(s_t, u_t), with gradient
    losses: Arrays = field(default_factory=dict)  # extra loss terms, each added to the loss as it is
    metrics: Arrays = field(default_factory=dict)  # () each: logged beside the update's own metrics
    carry: Arrays = field(default_factory=dict)  # kept until the next update (`Context.carry`)


@dataclass(frozen=True)
class Bootstrap:
    """The target networks' side of the targets."""

    next_value: jax.Array | None  # (T, B, heads): V(s_{t+1}) = Q_target(s_{t+1}, u'), no gradient;
    # None where the factorisation values s' itself (`TargetNetworks.mixes` false)
    greedy_value: jax.Array | None  # (T, B, heads): Q_target(s_t, u*(s_t)), when the weighting reads it
    utilities: jax.Array  # (T+1, B, agents, actions): the target agents' utilities
    hidden: jax.Array  # (T+1, B, agents, H): the target agents' hidden states
    actions: jax.Array  # (T+1, B, agents): the joint action u' bootstrapped at
    mix: Callable[[jax.Array, jax.Array], jax.Array]  # the target mixer: (chosen (..., agents), s) -> (..., heads)


# ---- the protocol ---------------------------------------------------------------------------------


class Factorisation(Protocol):
    """How utilities become Q_tot. `mix` may read every agent's utilities, the taken and greedy
    actions (`Agents`, `Transitions`), the online parameters of any network and the context.
    `bootstrap` finishes V(s') from the target source's `Bootstrap`, and may call any online or
    target network itself (QPLEX's target mixer reads the target agents' own max as well as
    their value at u*); the paper's mixers take `boot.next_value` as it is. `init_carry` is the
    state it keeps between updates (checkpointed with the learner)."""

    def init_carry(self) -> Arrays: ...

    def mix(self, params: Params, agents: Agents, batch: Transitions, context: Context) -> Mixed: ...

    def bootstrap(self, params: Params, target_params: Params, boot: Bootstrap, batch: Transitions, mixed: Mixed,
                  context: Context) -> jax.Array: ...


class TargetSource(Protocol):
    """Which target networks value s', and at which joint action. `with_greedy_value` asks also
    for Q_target(s, u*(s)) at every transition (CW)."""

    def __call__(self, params: Params, target_params: Params, agents: Agents, batch: Transitions,
                 with_greedy_value: bool) -> Bootstrap: ...


class Weighting(Protocol):
    """The weight of each squared TD error, (T, B, heads); a constant for the gradient."""

    needs_greedy_value: bool

    def __call__(self, q_tot: jax.Array, targets: jax.Array, agents: Agents, batch: Transitions,
                 boot: Bootstrap) -> jax.Array: ...


@dataclass(frozen=True)
class Pieces:
    """An algorithm, as the update sees it."""

    factorisation: Factorisation
    target: TargetSource
    weighting: Weighting


# ---- the paper's pieces -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MixerNetwork:
    """Q_tot = mixer(chosen utilities, s) with the algorithm's mixer network: QMIX's monotonic
    hypernetwork mixer, VDN's sum, or independent heads (IQL). Keeps nothing between updates."""

    networks: Networks

    def init_carry(self) -> Arrays:
        return {}

    def mix(self, params: Params, agents: Agents, batch: Transitions, context: Context) -> Mixed:
        return Mixed(q_tot=self.networks.mixer.apply(params["mixer"], agents.chosen, batch.state[:-1]))

    def bootstrap(self, params: Params, target_params: Params, boot: Bootstrap, batch: Transitions, mixed: Mixed,
                  context: Context) -> jax.Array:
        return boot.next_value


@dataclass(frozen=True)
class TargetNetworks:
    """V(s') from the target copies of the networks named `agent` and `mixer`, at online
    QMIX's greedy joint action u*(s') (`at_online_greedy`, double Q; every WQMIX target) or at
    the target agents' own masked argmax (the projector write-up's code)."""

    networks: Networks
    agent: str = "central_agent"
    mixer: str = "central_mixer"
    at_online_greedy: bool = True
    mixes: bool = True  # False: the factorisation's `bootstrap` runs the target mixer itself (QTRAN, Qatten)

    def __call__(self, params: Params, target_params: Params, agents: Agents, batch: Transitions,
                 with_greedy_value: bool) -> Bootstrap:
        hidden, utilities = unroll_with_hidden(getattr(self.networks, self.agent), target_params[self.agent],
                                               batch.inputs, batch.starts)
        actions = agents.greedy if self.at_online_greedy else masked_greedy(utilities, batch.avail)
        chosen = jnp.where(batch.alive, pick(utilities, actions), 0.0)  # (T+1, B, agents)
        def mix(qs, s):
            return getattr(self.networks, self.mixer).apply(target_params[self.mixer], qs, s)
        if not self.mixes:
            next_value = greedy_value = None
        elif with_greedy_value:  # one pass over s_0 .. s_T serves both
            values = mix(chosen, batch.state)  # (T+1, B, heads)
            next_value, greedy_value = values[1:], values[:-1]
        else:  # the mixer only where it is needed: s_1 .. s_T
            next_value, greedy_value = mix(chosen[1:], batch.state[1:]), None
        return Bootstrap(next_value=next_value, greedy_value=greedy_value, utilities=utilities, actions=actions,
                         mix=mix, hidden=hidden)


@dataclass(frozen=True)
class Unweighted:
    """w = 1 (QMIX, VDN, IQL, Q-hat*'s own loss)."""

    needs_greedy_value: bool = False

    def __call__(self, q_tot, targets, agents, batch, boot):
        return jnp.ones_like(targets)


@dataclass(frozen=True)
class Optimistic:
    """OW: w = 1 where Q_tot < y, else alpha (`losses.ow_weights`)."""

    alpha: float
    needs_greedy_value: bool = False

    def __call__(self, q_tot, targets, agents, batch, boot):
        return losses.ow_weights(q_tot, targets, self.alpha)


@dataclass(frozen=True)
class Central:
    """CW: w = 1 where u is online QMIX's greedy joint action or y > Q_target(s, u*), else
    alpha (`losses.cw_weights`); Q_target is the target Q-hat* (or, without it, the target Q_tot)."""

    alpha: float
    needs_greedy_value: bool = True

    def __call__(self, q_tot, targets, agents, batch, boot):
        return losses.cw_weights(batch.actions, agents.greedy[:-1], targets[..., 0], boot.greedy_value[..., 0],
                                 self.alpha)[..., None]


@dataclass(frozen=True)
class GreedyOnly:
    """The write-up's text (2.4): w = 1 where every agent took its argmax, else 0."""

    needs_greedy_value: bool = False

    def __call__(self, q_tot, targets, agents, batch, boot):
        return jnp.broadcast_to(losses.greedy_only_weights(batch.actions, agents.greedy[:-1])[..., None],
                                targets.shape)
