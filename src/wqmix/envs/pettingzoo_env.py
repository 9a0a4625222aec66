"""PettingZoo `ParallelEnv`s in the wqmix protocol. The env steps in Python on the host; acting
and learning stay compiled (see `wqmix.host_rollout`).

Wrapping your own environment: give `--env pettingzoo --env.factory my_package.my_module:make_env`
(any importable callable returning a `ParallelEnv` with discrete action spaces) and its keyword
arguments as JSON in `--env.kwargs`, plus the longest episode in `--env.time-limit`; or build
`PettingZooEnv(my_parallel_env, time_limit=...)` yourself and pass it to `wqmix.driver.train_run`.
See `examples/pettingzoo_custom_env.py`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wqmix.envs.base import EnvSpec, HostEnvironment, TimeStep
from wqmix.envs.padding import AgentShapes


def _observation_part(space_or_obs: Any) -> Any:
    """The observation inside a {"observation": ..., "action_mask": ...} dict, else itself."""
    if isinstance(space_or_obs, dict) or hasattr(space_or_obs, "spaces"):
        try:
            return space_or_obs["observation"]
        except (KeyError, TypeError):
            pass
    return space_or_obs


class PettingZooEnv(HostEnvironment):
    """Adapter from a PettingZoo `ParallelEnv` to wqmix's protocol.

    Agents keep a fixed slot (the order of `possible_agents`). Observations are flattened and
    zero-padded to the longest; action counts are padded to the largest (extra actions are
    unavailable). Action masks come from an "action_mask" entry of the observation dict or of
    the info dict; without one, every action is available. An agent that has left the episode
    (PettingZoo drops it from `env.agents`) observes zeros, has only `noop_action` available and
    is marked not alive, so its utility leaves the loss.
    """

    def __init__(self, env: Any, time_limit: int, state: str = "auto", noop_action: int = 0,
                 reward: str = "sum"):
        self.env, self.time_limit, self.noop_action, self.reward_mode = env, time_limit, noop_action, reward
        self.agent_names = list(env.possible_agents)
        obs_dims, action_counts = [], []
        for name in self.agent_names:
            space = _observation_part(env.observation_space(name))
            obs_dims.append(int(np.prod(space.shape)))
            action_space = env.action_space(name)
            if not hasattr(action_space, "n"):
                raise ValueError(f"agent {name!r} has a non-discrete action space {action_space}; "
                                 "wqmix needs discrete actions")
            action_counts.append(int(action_space.n))
        self._action_counts = np.asarray(action_counts)
        self.padded = AgentShapes(tuple(map(str, self.agent_names)), tuple(obs_dims), tuple(action_counts)).padded()
        num_actions = max(action_counts)
        if not 0 <= noop_action < num_actions:
            raise ValueError(f"noop_action {noop_action} is not an action (there are {num_actions})")
        self._obs_dim = max(obs_dims)
        env.reset(seed=0)
        self._use_env_state = False
        if state in ("auto", "env"):
            try:
                self._use_env_state = np.asarray(env.state()).size > 0
            except (NotImplementedError, AttributeError):
                if state == "env":
                    raise ValueError("state='env' but the env does not implement state()") from None
        n = len(self.agent_names)
        state_dim = int(np.asarray(env.state()).size) if self._use_env_state else n * self._obs_dim
        self.spec = EnvSpec(num_agents=n, obs_dim=self._obs_dim, state_dim=state_dim,
                            num_actions=num_actions, time_limit=time_limit)
        self._t = 0

    def _timestep(self, observations: dict, infos: dict, reward: float, terminated: bool,
                  truncated: bool, alive_names: set[str]) -> TimeStep:
        n, spec = len(self.agent_names), self.spec
        obs = np.zeros((n, spec.obs_dim), np.float32)
        avail = np.zeros((n, spec.num_actions), bool)
        alive = np.zeros((n,), bool)
        for i, name in enumerate(self.agent_names):
            if name in alive_names and name in observations:
                raw = observations[name]
                flat = np.asarray(_observation_part(raw), np.float32).reshape(-1)
                obs[i, : flat.size] = flat
                mask = None
                if isinstance(raw, dict) and "action_mask" in raw:
                    mask = raw["action_mask"]
                elif isinstance(infos.get(name), dict) and "action_mask" in infos[name]:
                    mask = infos[name]["action_mask"]
                if mask is None:
                    avail[i, : self._action_counts[i]] = True
                else:
                    mask = np.asarray(mask, bool).reshape(-1)
                    avail[i, : mask.size] = mask
                alive[i] = True
            else:
                avail[i, self.noop_action] = True
        if self._use_env_state:
            state = np.asarray(self.env.state(), np.float32).reshape(-1)
        else:
            state = obs.reshape(-1)
        return TimeStep(obs=obs, state=state, avail=avail, reward=np.float32(reward),
                        terminated=np.bool_(terminated), truncated=np.bool_(truncated), won=np.bool_(False),
                        alive=alive)

    def reset(self, seed: int) -> TimeStep:
        observations, infos = self.env.reset(seed=int(seed))
        self._t = 0
        return self._timestep(observations, infos, 0.0, False, False, set(self.env.agents))

    def step(self, actions: np.ndarray) -> TimeStep:
        present = list(self.env.agents)
        action_dict = {name: int(actions[self.agent_names.index(name)]) for name in present}
        observations, rewards, terminations, truncations, infos = self.env.step(action_dict)
        self._t += 1
        values = [float(rewards.get(name, 0.0)) for name in present]
        reward = sum(values) if self.reward_mode == "sum" else (sum(values) / max(len(values), 1))
        over = not self.env.agents or all(terminations.get(a, False) or truncations.get(a, False)
                                          for a in self.env.agents)
        cut_by_env = any(truncations.get(a, False) for a in present)
        terminated = over and not cut_by_env
        truncated = (over and cut_by_env) or (not over and self._t >= self.time_limit)
        # An agent cut by truncation still takes part in the last state (its value bootstraps);
        # one that terminated has left.
        alive_names = {a for a in present if not terminations.get(a, False)}
        return self._timestep(observations, infos, reward, terminated, truncated, alive_names)
