"""Train OW-QMIX on your own PettingZoo environment.

Run: python examples/pettingzoo_custom_env.py   (about a minute on 2 CPU cores)

`MeetingEnv` is a small cooperative `ParallelEnv`: two agents on a line of 5 cells must meet;
each step costs -0.1, meeting pays +1 and ends the episode; an agent at an end of the line
cannot step off it (its action mask, given in `infos`, says so). Any ParallelEnv with discrete
actions plugs in the same way: build it in a function, wrap it in `PettingZooEnv` with the
longest episode length, and hand the function to `train_run`. From the command line the same
env would be `wqmix train --env pettingzoo --env.factory examples.pettingzoo_custom_env:MeetingEnv
--env.kwargs '{}' --env.time-limit 10` (with `examples` importable).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from wqmix import config as cfg
from wqmix.driver import train_run
from wqmix.envs.pettingzoo_env import PettingZooEnv


class MeetingEnv(ParallelEnv):
    metadata = {"name": "meeting_v0"}
    LEFT, STAY, RIGHT = 0, 1, 2

    def __init__(self, length: int = 5, max_steps: int = 10):
        self.length, self.max_steps = length, max_steps
        self.possible_agents = ["left", "right"]

    def observation_space(self, agent):
        return spaces.Box(0, 1, (2 * self.length,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(3)

    def _obs(self):
        grid = np.zeros((2, self.length), np.float32)
        grid[0, self.pos["left"]] = grid[1, self.pos["right"]] = 1
        return {a: grid.reshape(-1).copy() for a in self.agents}

    def _infos(self):
        masks = {}
        for a in self.agents:
            mask = np.ones(3, np.int8)
            mask[self.LEFT] = self.pos[a] > 0
            mask[self.RIGHT] = self.pos[a] < self.length - 1
            masks[a] = {"action_mask": mask}
        return masks

    def reset(self, seed=None, options=None):
        rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.pos = {"left": int(rng.integers(0, 2)), "right": int(rng.integers(self.length - 2, self.length))}
        self.t = 0
        return self._obs(), self._infos()

    def state(self):
        return np.array([self.pos["left"], self.pos["right"], self.t], np.float32)

    def step(self, actions):
        self.t += 1
        for a, act in actions.items():
            self.pos[a] = int(np.clip(self.pos[a] + act - 1, 0, self.length - 1))
        met = self.pos["left"] == self.pos["right"]
        rewards = {a: (1.0 if met else -0.1) / 2 for a in self.agents}  # team reward = the sum
        terminations = {a: met for a in self.agents}
        truncations = {a: self.t >= self.max_steps and not met for a in self.agents}
        obs, infos = self._obs(), self._infos()
        if met or self.t >= self.max_steps:
            self.agents = []
        return obs, rewards, terminations, truncations, infos


def main() -> None:
    config = cfg.with_algo(cfg.Config(), "ow-qmix")
    config = dataclasses.replace(
        config,
        train=dataclasses.replace(config.train, total_env_steps=3000, num_envs=4, batch_size=16),
        exploration=cfg.ExplorationConfig(epsilon_start=1.0, epsilon_finish=0.05, epsilon_anneal_steps=1500),
    )
    summary = train_run(config, "runs/meeting-ow-qmix",
                        make_env=lambda: PettingZooEnv(MeetingEnv(), time_limit=10))
    print("greedy test return:", summary["per_seed"][0]["greedy_return"])


if __name__ == "__main__":
    main()
