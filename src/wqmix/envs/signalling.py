"""A small signalling game written to JaxMARL's `MultiAgentEnv` API, whose two agents differ in
observation size and action count: the default of `--env jax` and the test bed of padding.

A goal cell is drawn on a line of `length` cells. The speaker sees the goal (one-hot, `length`)
and says one of `length` words; the mover sees its own cell and the speaker's last word (two
one-hots, 2 x `length`) and moves left, stays or moves right (3 actions; stepping off the line
is unavailable). Each step costs `step_cost`; when the mover stays on the goal the team gets 1
and the episode ends (the team reward is split evenly between the two agents, as JaxMARL's
baseline sums the agents' rewards). The speaker must name the goal and the mover must read the name: neither
can score alone. Duck-typed to JaxMARL's API (no import of jaxmarl).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct


class Discrete(NamedTuple):
    """An action space of `n` actions (the part of jaxmarl's `Discrete` that adapters read)."""

    n: int


class Box(NamedTuple):
    """An observation space of this shape (the part of jaxmarl's `Box` that adapters read)."""

    shape: tuple[int, ...]


@struct.dataclass
class SignallingState:
    goal: jax.Array  # () int32: the goal cell
    position: jax.Array  # () int32: the mover's cell
    word: jax.Array  # () int32: the speaker's last word (0 before it has spoken)
    step: jax.Array  # () int32


LEFT, STAY, RIGHT = 0, 1, 2


class SignallingGame:
    """Two agents, "speaker" (obs `length`, `length` actions) and "mover" (obs 2 x `length`, 3
    actions). Defaults: ours (small enough to learn in minutes on a CPU)."""

    def __init__(self, length: int = 4, max_steps: int = 8, step_cost: float = 0.1):
        if length < 2:
            raise ValueError(f"length must be >= 2, got {length}")
        self.length, self.max_steps, self.step_cost = length, max_steps, step_cost
        self.name = "signalling"
        self.agents = ["speaker", "mover"]
        self.num_agents = 2
        self.action_spaces = {"speaker": Discrete(length), "mover": Discrete(3)}
        self.observation_spaces = {"speaker": Box((length,)), "mover": Box((2 * length,))}

    def action_space(self, agent: str) -> Discrete:
        return self.action_spaces[agent]

    def observation_space(self, agent: str) -> Box:
        return self.observation_spaces[agent]

    def get_obs(self, state: SignallingState) -> dict[str, jax.Array]:
        cells = jnp.eye(self.length, dtype=jnp.float32)
        return {"speaker": cells[state.goal],
                "mover": jnp.concatenate([cells[state.position], cells[state.word]])}

    def get_avail_actions(self, state: SignallingState) -> dict[str, jax.Array]:
        mover = jnp.array([state.position > 0, True, state.position < self.length - 1])
        return {"speaker": jnp.ones((self.length,), bool), "mover": mover}

    def reset(self, key: jax.Array) -> tuple[dict[str, jax.Array], SignallingState]:
        goal_key, position_key = jax.random.split(key)
        state = SignallingState(goal=jax.random.randint(goal_key, (), 0, self.length),
                                position=jax.random.randint(position_key, (), 0, self.length),
                                word=jnp.zeros((), jnp.int32), step=jnp.zeros((), jnp.int32))
        return self.get_obs(state), state

    def step_env(self, key: jax.Array, state: SignallingState, actions: dict[str, Any]):
        del key  # deterministic given the state
        move = jnp.asarray(actions["mover"], jnp.int32)
        position = jnp.clip(state.position + move - 1, 0, self.length - 1)
        scored = (move == STAY) & (state.position == state.goal)
        state = SignallingState(goal=state.goal, position=position, word=jnp.asarray(actions["speaker"], jnp.int32),
                                step=state.step + 1)
        reward = jnp.where(scored, 1.0, 0.0) - self.step_cost
        done = scored | (state.step >= self.max_steps)
        # the team reward split evenly, so that the sum JaxMARL's baseline takes is the team's
        rewards = {agent: reward / self.num_agents for agent in self.agents}
        dones = {"speaker": done, "mover": done, "__all__": done}
        return self.get_obs(state), state, rewards, dones, {}

    step = step_env  # no auto-reset: wqmix resets episodes itself


def make(length: int = 4, max_steps: int = 8, step_cost: float = 0.1) -> SignallingGame:
    """The factory `--env jax` names by default (`wqmix.envs.signalling:make`)."""
    return SignallingGame(length, max_steps, step_cost)
