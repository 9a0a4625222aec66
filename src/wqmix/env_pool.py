"""Host environments stepped together: in this process (`LocalEnvs`) or in worker processes
(`WorkerEnvs`, `train.env_workers`), as pymarl's parallel runner and gymnasium's
`AsyncVectorEnv` do.

Both take and return arrays with a leading env axis, so that `HostRunner` (`wqmix.host_rollout`)
never loops over envs in Python itself. Env i is always the same env object, reset with the same
seeds and given the same actions, wherever it runs: a run's results do not depend on where its
envs step.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import sys
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np


class Steps(NamedTuple):
    """Time steps of several envs, stacked on a leading axis (N, ...); fields as `TimeStep`."""

    obs: np.ndarray  # (N, agents, obs_dim) float32
    state: np.ndarray  # (N, state_dim) float32
    avail: np.ndarray  # (N, agents, actions) bool
    alive: np.ndarray  # (N, agents) bool
    reward: np.ndarray  # (N,) float32
    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    won: np.ndarray  # (N,) bool


def stack(timesteps: Sequence[Any]) -> Steps:
    """`Steps` of a list of host `TimeStep`s."""
    return Steps(*(np.stack([np.asarray(getattr(ts, name)) for ts in timesteps]) for name in Steps._fields))


def concatenate(parts: Sequence[Steps]) -> Steps:
    return Steps(*(np.concatenate(fields) for fields in zip(*parts)))


class LocalEnvs:
    """`envs` stepped one after the other in this process."""

    def __init__(self, envs: Sequence[Any]):
        self.envs = list(envs)

    def reset(self, seeds: np.ndarray) -> Steps:
        """Reset every env, env i from `seeds[i]`."""
        return stack([env.reset(int(seed)) for env, seed in zip(self.envs, seeds)])

    def step(self, which: np.ndarray, actions: np.ndarray) -> Steps:
        """Step the envs `which` (indices, increasing), env which[j] with `actions[j]` (agents,)."""
        return stack([self.envs[i].step(a) for i, a in zip(which, actions)])

    def close(self) -> None:
        pass


def _worker(connection: Any, make_env: Callable[[], Any], count: int) -> None:
    """A worker process: builds `count` envs, then answers ("reset", seeds), ("step", (which,
    actions)) and ("close", None) on `connection` with `Steps` (or an exception)."""
    envs = LocalEnvs([make_env() for _ in range(count)])
    connection.send(None)  # built
    while True:
        command, payload = connection.recv()
        if command == "close":
            connection.close()
            return
        try:
            connection.send(envs.reset(payload) if command == "reset" else envs.step(*payload))
        except Exception as error:  # noqa: BLE001 - sent back and raised in the parent
            connection.send(error)


@contextlib.contextmanager
def _main_file_that_spawn_can_run():
    """A spawned child first runs the parent's `__main__` file again. A script read from stdin
    (`python - < train.py`) has `__file__` "<stdin>", which is no file: CPython's child then dies
    with FileNotFoundError. Hide such a `__file__` while the children start, so that they skip
    it, as they do for the REPL and `python -c` (a factory defined in that script cannot reach
    them either way: pass a module-level one, as for any spawned worker)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or os.path.exists(path) or getattr(main, "__spec__", None) is not None:
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


class WorkerEnvs:
    """`num_envs` envs from `make_env`, spread over `workers` processes in contiguous blocks
    (`np.array_split` of the env indices). Each call sends every worker its share and
    then waits for all of them, so the workers step side by side. Processes are started with
    "spawn" (forking a process that runs JAX's threads can deadlock): `make_env` must pickle,
    e.g. a config's `make` method or a module-level function."""

    def __init__(self, make_env: Callable[[], Any], num_envs: int, workers: int):
        try:
            pickle.dumps(make_env)
        except Exception as error:  # noqa: BLE001 - any pickling failure means the same thing
            raise ValueError(f"train.env_workers needs an env factory that pickles (a module-level function "
                             f"or a config's make method), not {make_env!r}: {error}") from None
        workers = min(workers, num_envs)
        self.blocks = np.array_split(np.arange(num_envs), workers)
        context = multiprocessing.get_context("spawn")
        self.connections, self.processes = [], []
        with _main_file_that_spawn_can_run():
            for block in self.blocks:
                parent, child = context.Pipe()
                process = context.Process(target=_worker, args=(child, make_env, len(block)), daemon=True)
                process.start()
                child.close()
                self.connections.append(parent)
                self.processes.append(process)
        for connection in self.connections:
            self._receive(connection)

    def _receive(self, connection: Any) -> Any:
        try:
            answer = connection.recv()
        except EOFError:
            raise RuntimeError("an env worker process died (see its error above)") from None
        if isinstance(answer, Exception):
            raise answer
        return answer

    def reset(self, seeds: np.ndarray) -> Steps:
        for connection, block in zip(self.connections, self.blocks):
            connection.send(("reset", seeds[block]))
        return concatenate([self._receive(connection) for connection in self.connections])

    def step(self, which: np.ndarray, actions: np.ndarray) -> Steps:
        asked = []
        for connection, block in zip(self.connections, self.blocks):
            mine = (which >= block[0]) & (which <= block[-1])
            if mine.any():
                connection.send(("step", (which[mine] - block[0], actions[mine])))
                asked.append(connection)
        return concatenate([self._receive(connection) for connection in asked])

    def close(self) -> None:
        for connection in self.connections:
            try:
                connection.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
