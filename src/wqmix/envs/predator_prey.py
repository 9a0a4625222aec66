"""Predator-prey with miscapture punishment: the paper's "stag hunt" (WQMIX, Section 6.2).

A bounded square grid holds `num_agents` predators and `num_prey` prey on distinct cells.
Each step:

1. The agents act in a uniformly random order (drawn from the step key). A move (right, down,
   left, up) goes into the neighbouring cell unless that cell holds an agent in play or a prey;
   a blocked move, "stay" and "catch" leave the agent where it is.
2. Then every prey still in play is handled in a uniformly random order (official code, see
   below). Its catchers are the agents in play that chose "catch" and stand in one of its four
   neighbour cells. With at least `agents_to_capture` catchers (2) the prey is captured: the team
   gets `capture_reward`, the prey leaves the grid and its catchers freeze and leave the grid.
   With 1 catcher (any number from 1 to `agents_to_capture - 1`) the team gets `punishment` for
   that prey. A prey that is not captured moves to one of its free neighbour cells (no agent in
   play, no prey, inside the grid), chosen uniformly; with none free it stays.
3. The episode terminates when every prey is captured or every agent is frozen; it is truncated
   (not terminated) when `time_limit` steps have passed without that.

Actions, in the official code's index order (`stag_hunt.py`, `action_labels`):
0 right (column + 1), 1 down (row + 1), 2 left (column - 1), 3 up (row - 1), 4 stay, 5 catch.
Rows grow downwards, positions are (row, column) int32.
Available actions: a move only when its target is inside the grid (occupied cells stay
available: the move is then blocked), stay always, catch only with a prey in a neighbour cell.
A frozen agent has only "stay". An unavailable action taken anyway acts as "stay" (a move off
the grid is clipped to the agent's own cell, as in the official code; a catch with no prey
next to the agent touches no prey, so it is neither a capture nor a miscapture).

Observation of an agent: the (2r+1) x (2r+1) window of grid cells centred on it, r =
`obs_radius`, with 3 channels per cell (agent in play, prey, second prey type), flattened
row-major with the channel last: index = (3 * (2r+1)) * row + 3 * column + channel, row and
column counted from the window's top-left corner. Cells outside the grid are 0. The agent sees
itself (channel 0 of the centre cell is 1), as in the official code. The third channel is the
official code's "hare" channel; this environment has no hares, so it is always 0; it is kept
so that the observation has the paper's 5 x 5 x 3 = 75 values. A frozen agent observes zeros.
State: the whole grid_size x grid_size x 3 grid, flattened the same way.

Where the reference description (paper) is silent, this follows the official code
(oxwhirl/wqmix `src/envs/stag_hunt/stag_hunt.py` with `pred_prey_punish.yaml`):
- Prey are handled one at a time in a fresh random order, each checked for capture and then
  moved, before the next prey. So an agent frozen by an earlier prey's capture no longer counts
  (and earns no punishment) as a catcher of a later prey in the same step, and a prey handled
  after a capture may step into the cells the capture freed. The paper only says the prey move
  after the agents.
- The miscapture punishment is counted once per prey per step (paper: "per prey per step";
  official: `if n_catching_agents > 0 and not captured: reward += miscapture_punishment` inside
  the per-prey loop). One catcher next to two prey, or two lone catchers at two prey, cost 2p.
- The agent sees itself in its own observation; frozen agents are removed from the grid
  (`remove_frozen: True`), so they block nothing and nobody sees them.
- Initial positions are uniform over layouts with all agents and prey on distinct cells
  (official `_place_actors` rejection-samples free cells, which gives the same distribution).
- The official time and collision rewards (`reward_time: 0`, `reward_collision: 0`), the prey's
  chance to rest (`p_stags_rest: 0`) and the hares (`n_hare: 0`) are all zero in the paper's
  config and are left out.
Ours, where the official code differs: the official code flags `terminated` at the time limit
with `episode_limit` in its info; here the time limit sets `truncated` and leaves `terminated`
false, and a step that both ends the game and reaches the limit is terminated, not truncated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from wqmix.envs.base import Environment, EnvSpec, TimeStep

if TYPE_CHECKING:  # the config imports this module (its `make`), not the other way round
    from wqmix.envs.configs import PredatorPreyConfig

RIGHT, DOWN, LEFT, UP, STAY, CATCH = range(6)
"""Action indices, in the official code's order."""
ACTION_NAMES: tuple[str, ...] = ("right", "down", "left", "up", "stay", "catch")
NUM_ACTIONS = 6
MOVES = np.array([[0, 1], [1, 0], [0, -1], [-1, 0], [0, 0], [0, 0]], dtype=np.int32)
"""(row, column) change of each action; stay and catch do not move."""
NUM_CHANNELS = 3
"""Cell channels: 0 agent in play, 1 prey, 2 second prey type (hares: always 0 here)."""


@struct.dataclass
class PredatorPreyState:
    """Positions and flags of one episode. Frozen agents and captured prey keep their last
    position, but are off the grid: they block nothing and appear in no observation."""

    agent_pos: jax.Array  # (agents, 2) int32, (row, column)
    prey_pos: jax.Array  # (prey, 2) int32
    agent_active: jax.Array  # (agents,) bool: false once frozen by a capture
    prey_alive: jax.Array  # (prey,) bool: false once captured
    t: jax.Array  # () int32: steps taken in this episode


def _same_cell(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.all(a == b, axis=-1)


class PredatorPrey(Environment):
    """Predator-prey with miscapture punishment; see the module docstring for the rules."""

    def __init__(self, config: PredatorPreyConfig):
        config.validate("env")
        self.config = config
        self.grid_size = int(config.grid_size)
        self.num_agents = int(config.num_agents)
        self.num_prey = int(config.num_prey)
        self.obs_radius = int(config.obs_radius)
        self.window = 2 * self.obs_radius + 1
        self.punishment = float(config.punishment)
        self.capture_reward = float(config.capture_reward)
        self.agents_to_capture = int(config.agents_to_capture)
        self.time_limit = int(config.time_limit)
        self.spec = EnvSpec(
            num_agents=self.num_agents,
            obs_dim=self.window * self.window * NUM_CHANNELS,
            state_dim=self.grid_size * self.grid_size * NUM_CHANNELS,
            num_actions=NUM_ACTIONS,
            time_limit=self.time_limit,
            obs_dtype=np.bool_,  # 0/1 occupancy: stored as bits in the replay buffer
            state_dtype=np.bool_,
        )

    # ------------------------------------------------------------------------------ episodes
    def reset(self, key: jax.Array) -> tuple[PredatorPreyState, TimeStep]:
        n, a, p = self.grid_size, self.num_agents, self.num_prey
        # The a + p cells with the largest of n*n iid uniforms: a uniformly random ordered
        # choice of distinct cells, like `permutation(key, n*n)[:a + p]` but without a full sort.
        _, cells = jax.lax.top_k(jax.random.uniform(key, (n * n,)), a + p)
        cells = cells.astype(jnp.int32)
        pos = jnp.stack([cells // n, cells % n], axis=-1)
        state = PredatorPreyState(
            agent_pos=pos[:a],
            prey_pos=pos[a:],
            agent_active=jnp.ones((a,), bool),
            prey_alive=jnp.ones((p,), bool),
            t=jnp.zeros((), jnp.int32),
        )
        return state, self._timestep(state, jnp.zeros((), jnp.float32), jnp.asarray(False), jnp.asarray(False))

    def reset_to(self, agent_positions, prey_positions, *, frozen=None, caught=None,
                 t: int = 0) -> tuple[PredatorPreyState, TimeStep]:
        """An episode started from an exact layout (tests, scripted demos). `agent_positions`
        (agents, 2) and `prey_positions` (prey, 2) are (row, column) pairs; `frozen` (agents,)
        and `caught` (prey,) optionally take agents and prey out of play (their positions are
        then ignored); `t` is the number of steps already taken. Raises `ValueError` when a
        position is off the grid or two entities in play share a cell."""
        n, a, p = self.grid_size, self.num_agents, self.num_prey
        agents = np.asarray(agent_positions, dtype=np.int64)
        prey = np.asarray(prey_positions, dtype=np.int64)
        if agents.shape != (a, 2):
            raise ValueError(f"agent_positions must be {a} (row, column) pairs, got shape {agents.shape}")
        if prey.shape != (p, 2):
            raise ValueError(f"prey_positions must be {p} (row, column) pairs, got shape {prey.shape}")
        frozen = np.zeros(a, bool) if frozen is None else np.asarray(frozen, bool).reshape(-1)
        caught = np.zeros(p, bool) if caught is None else np.asarray(caught, bool).reshape(-1)
        if frozen.shape != (a,) or caught.shape != (p,):
            raise ValueError(f"frozen must have {a} flags and caught {p} flags")
        if not 0 <= t < self.time_limit:
            raise ValueError(f"t must be in [0, {self.time_limit}), got {t}")
        in_play = np.concatenate([agents[~frozen], prey[~caught]])
        if np.any((in_play < 0) | (in_play >= n)):
            raise ValueError(f"every position must be inside the {n}x{n} grid (0..{n - 1})")
        if len({tuple(x) for x in in_play.tolist()}) != len(in_play):
            raise ValueError("agents and prey in play must stand on distinct cells")
        agents = np.clip(agents, 0, n - 1)
        prey = np.clip(prey, 0, n - 1)
        state = PredatorPreyState(
            agent_pos=jnp.asarray(agents, jnp.int32),
            prey_pos=jnp.asarray(prey, jnp.int32),
            agent_active=jnp.asarray(~frozen),
            prey_alive=jnp.asarray(~caught),
            t=jnp.asarray(t, jnp.int32),
        )
        return state, self._timestep(state, jnp.zeros((), jnp.float32), jnp.asarray(False), jnp.asarray(False))

    def step(self, key: jax.Array, env_state: PredatorPreyState,
             actions: jax.Array) -> tuple[PredatorPreyState, TimeStep]:
        n = self.grid_size
        moves = jnp.asarray(MOVES)
        actions = jnp.asarray(actions, jnp.int32)
        agent_order_key, prey_order_key, prey_move_key = jax.random.split(key, 3)
        active = env_state.agent_active
        prey_alive = env_state.prey_alive

        # 1. Agents move one at a time in a random order, blocked by agents in play and prey.
        agent_order = jax.random.permutation(agent_order_key, self.num_agents)
        prey_pos = env_state.prey_pos

        def move_agent(i, agent_pos):
            a = agent_order[i]
            action = actions[a]
            target = agent_pos[a] + moves[action]
            inside = jnp.all((target >= 0) & (target < n))
            blocked = (jnp.any(_same_cell(agent_pos, target) & active)
                       | jnp.any(_same_cell(prey_pos, target) & prey_alive))
            go = active[a] & (action < STAY) & inside & ~blocked
            return agent_pos.at[a].set(jnp.where(go, target, agent_pos[a]))

        agent_pos = jax.lax.fori_loop(0, self.num_agents, move_agent, env_state.agent_pos)

        # 2. Prey one at a time in a random order: capture check, else a random free move.
        prey_order = jax.random.permutation(prey_order_key, self.num_prey)
        move_draws = jax.random.uniform(prey_move_key, (self.num_prey, 4))
        chose_catch = actions == CATCH

        def handle_prey(i, carry):
            prey_pos, prey_alive, active, reward = carry
            q = prey_order[i]
            here = prey_pos[q]
            alive = prey_alive[q]
            adjacent = jnp.sum(jnp.abs(agent_pos - here), axis=-1) == 1
            catchers = adjacent & active & chose_catch
            count = jnp.sum(catchers)
            captured = alive & (count >= self.agents_to_capture)
            miscaught = alive & (count > 0) & ~captured
            reward = (reward + jnp.where(captured, self.capture_reward, 0.0)
                      + jnp.where(miscaught, self.punishment, 0.0))
            active = active & ~(catchers & captured)
            prey_alive = prey_alive.at[q].set(alive & ~captured)
            targets = here + moves[:4]  # (4, 2)
            inside = jnp.all((targets >= 0) & (targets < n), axis=-1)
            agent_there = jnp.any(_same_cell(targets[:, None], agent_pos[None]) & active[None], axis=-1)
            prey_there = jnp.any(_same_cell(targets[:, None], prey_pos[None]) & prey_alive[None], axis=-1)
            free = inside & ~agent_there & ~prey_there
            pick = jnp.argmax(jnp.where(free, move_draws[i], -1.0))
            go = alive & ~captured & jnp.any(free)
            prey_pos = prey_pos.at[q].set(jnp.where(go, targets[pick], here))
            return prey_pos, prey_alive, active, reward

        prey_pos, prey_alive, active, reward = jax.lax.fori_loop(
            0, self.num_prey, handle_prey,
            (env_state.prey_pos, prey_alive, active, jnp.zeros((), jnp.float32)))

        # 3. Episode end.
        t = env_state.t + 1
        terminated = ~jnp.any(prey_alive) | ~jnp.any(active)
        truncated = (t >= self.time_limit) & ~terminated
        state = PredatorPreyState(agent_pos=agent_pos, prey_pos=prey_pos, agent_active=active,
                                  prey_alive=prey_alive, t=t)
        return state, self._timestep(state, reward, terminated, truncated)

    # ------------------------------------------------------------------------------ views
    def grid(self, env_state: PredatorPreyState) -> jax.Array:
        """(grid_size, grid_size, 3) float32 occupancy: channel 0 agents in play, 1 prey,
        2 second prey type (always 0)."""
        n = self.grid_size
        grid = jnp.zeros((n, n, NUM_CHANNELS), jnp.float32)
        a, p = env_state.agent_pos, env_state.prey_pos
        # `max`, not `set`: an out-of-play entity may share a cell with one in play.
        grid = grid.at[a[:, 0], a[:, 1], 0].max(env_state.agent_active.astype(jnp.float32))
        grid = grid.at[p[:, 0], p[:, 1], 1].max(env_state.prey_alive.astype(jnp.float32))
        return grid

    def observations(self, env_state: PredatorPreyState, grid: jax.Array | None = None) -> jax.Array:
        """(agents, obs_dim) float32 windows around each agent; zeros for frozen agents."""
        grid = self.grid(env_state) if grid is None else grid
        r, w = self.obs_radius, self.window
        padded = jnp.pad(grid, ((r, r), (r, r), (0, 0)))
        windows = jax.vmap(lambda pos: jax.lax.dynamic_slice(padded, (pos[0], pos[1], 0),
                                                             (w, w, NUM_CHANNELS)))(env_state.agent_pos)
        obs = windows.reshape(self.num_agents, -1)
        return obs * env_state.agent_active[:, None].astype(jnp.float32)

    def available_actions(self, env_state: PredatorPreyState) -> jax.Array:
        """(agents, 6) bool: in-grid moves, stay, and catch next to a prey; frozen: stay only."""
        n = self.grid_size
        pos = env_state.agent_pos
        targets = pos[:, None, :] + jnp.asarray(MOVES[:4])[None]  # (agents, 4, 2)
        inside = jnp.all((targets >= 0) & (targets < n), axis=-1)
        distance = jnp.sum(jnp.abs(pos[:, None, :] - env_state.prey_pos[None, :, :]), axis=-1)
        can_catch = jnp.any((distance == 1) & env_state.prey_alive[None, :], axis=-1)
        active = env_state.agent_active[:, None]
        stay = jnp.ones((self.num_agents, 1), bool)
        avail = jnp.concatenate([inside & active, stay, can_catch[:, None] & active], axis=-1)
        return avail

    def _timestep(self, env_state: PredatorPreyState, reward: jax.Array, terminated: jax.Array,
                  truncated: jax.Array) -> TimeStep:
        grid = self.grid(env_state)
        return TimeStep(
            obs=self.observations(env_state, grid),
            state=grid.reshape(-1),
            avail=self.available_actions(env_state),
            reward=jnp.asarray(reward, jnp.float32),
            terminated=jnp.asarray(terminated, bool),
            truncated=jnp.asarray(truncated, bool),
            won=jnp.asarray(False),
        )
