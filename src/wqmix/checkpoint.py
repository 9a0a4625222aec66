"""Checkpoints of the whole training state, for exact resume.

Everything a run needs to continue bit for bit is in one pytree (`TrainState`, with a leading
seed axis: parameters, target parameters, optimiser states, replay buffer, RNG keys, counters)
plus a little host bookkeeping (which chunk comes next, how many metric rows were written,
elapsed time). orbax writes each checkpoint into a temporary folder and renames it when complete,
so a kill during a save never leaves a checkpoint that can be loaded half-written; the last
`keep` checkpoints are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from wqmix.train import TrainState


def _to_saveable(states: TrainState) -> TrainState:
    """Typed PRNG keys become their raw uint32 data (what orbax can store)."""
    return states.replace(key=jax.random.key_data(states.key))


def _from_saved(saved: TrainState, like: TrainState) -> TrainState:
    return saved.replace(key=jax.random.wrap_key_data(saved.key, impl=jax.random.key_impl(like.key)))


def _saved_leaf(saved: Any, path: tuple, like: jax.Array) -> jax.Array:
    """The array at `path` (a JAX key path) of a tree as orbax restores it without a target:
    dataclasses and named tuples as dicts of their fields, tuples as lists."""
    node = saved
    for entry in path:
        key = (entry.name if isinstance(entry, jax.tree_util.GetAttrKey) else
               entry.key if isinstance(entry, jax.tree_util.DictKey) else entry.idx)
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            raise ValueError(f"the checkpoint has no {jax.tree_util.keystr(path)}: it was written by a run "
                             f"with another config or version") from None
    if node.shape != like.shape or node.dtype != like.dtype:
        raise ValueError(f"the checkpoint's {jax.tree_util.keystr(path)} is {node.dtype}{list(node.shape)}, "
                         f"this run's is {like.dtype}{list(like.shape)}: it was written by a run with another config")
    return node


class Checkpointer:
    """Save and restore `TrainState`s under `run_dir/checkpoints/<env steps>`."""

    def __init__(self, run_dir: Path, keep: int):
        self.directory = (Path(run_dir) / "checkpoints").resolve()
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                 enable_async_checkpointing=False),
        )

    def save(self, env_steps: int, states: TrainState, meta: dict[str, Any]) -> None:
        """Write a checkpoint labelled `env_steps` (completed before returning)."""
        self.manager.save(env_steps, args=ocp.args.Composite(
            state=ocp.args.StandardSave(_to_saveable(states)), meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def restore(self, step: int, like: TrainState) -> tuple[TrainState, dict[str, Any]]:
        """The states saved at `step`, shaped like `like` (a freshly initialised state).

        Restored as saved (nested dicts and lists), then each array of `like` is looked up by its
        path: optional parts of the state that are None (`TrainState.stream`, the replay's
        `starts`) hold no arrays, so a checkpoint written before they existed restores too."""
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
        saveable = _to_saveable(like)
        paths, treedef = jax.tree_util.tree_flatten_with_path(saveable)
        leaves = [_saved_leaf(restored["state"], path, leaf) for path, leaf in paths]
        return _from_saved(jax.tree_util.tree_unflatten(treedef, leaves), like), dict(restored["meta"])

    def restore_params(self, step: int, like: Any) -> Any:
        """Only the learner's parameters saved at `step` (`TrainState.learner.params`), shaped like
        `like` (arrays or `jax.ShapeDtypeStruct`s, leading seed axis): what evaluating a policy
        needs. The rest of the state, the replay buffer above all (gigabytes on SMAX), is not
        read, so an evaluation beside a training run does not double its memory."""
        item = {"learner": {"params": like}}
        restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
                item=item, restore_args=restore_args, partial_restore=True)))
        except (KeyError, ValueError) as e:
            raise ValueError(f"the checkpoint at {step} holds other parameters than this run's config makes: it was "
                             f"written by a run with another config or version ({str(e).splitlines()[0][:200]})") from None
        paths, treedef = jax.tree_util.tree_flatten_with_path(item)
        leaves = [_saved_leaf(restored["state"], path, leaf) for path, leaf in paths]
        return jax.tree_util.tree_unflatten(treedef, leaves)["learner"]["params"]

    def close(self) -> None:
        self.manager.close()


def all_finite(tree: Any) -> tuple[bool, str | None]:
    """Whether every array of `tree` is finite; else the path of the first that is not."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    for path, leaf in leaves:
        array = np.asarray(leaf)
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            return False, jax.tree_util.keystr(path)
    return True, None
