"""Checkpoint restore by path: a checkpoint written before the state's optional (None) parts
existed restores, and one from another config is refused naming the array."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from wqmix.checkpoint import Checkpointer, _to_saveable
from wqmix.train import Trainer, seed_keys

pytestmark = pytest.mark.integration  # orbax writes and reads checkpoints of a whole Trainer


def _as_saved_before_optional_fields(states) -> dict:
    """The state as nested dicts, as a checkpoint written before `TrainState.stream` and the
    replay's `starts` existed holds it (no entry for either)."""
    tree = jax.tree_util.tree_map(np.asarray, _to_saveable(states))

    def plain(x):
        if dataclasses.is_dataclass(x):
            return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x) if getattr(x, f.name) is not None
                    and f.metadata.get("pytree_node", True)}
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            return {name: plain(getattr(x, name)) for name in x._fields}
        if isinstance(x, (tuple, list)):
            return [plain(v) for v in x]
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x
    return plain(tree)


def test_a_checkpoint_without_the_optional_fields_restores_and_another_configs_is_refused(tiny, tmp_path):
    trainer = Trainer(tiny("qmix"))
    states = jax.vmap(trainer.init)(seed_keys(3, 2))
    old = _as_saved_before_optional_fields(states)
    assert "stream" not in old and "starts" not in old["buffer"]["data"]
    manager = ocp.CheckpointManager(tmp_path / "checkpoints", options=ocp.CheckpointManagerOptions(create=True))
    manager.save(7, args=ocp.args.Composite(state=ocp.args.StandardSave(old), meta=ocp.args.JsonSave({"n": 1})))
    manager.wait_until_finished()
    manager.close()

    like = jax.vmap(trainer.init)(seed_keys(0, 2))
    restored, meta = Checkpointer(tmp_path, keep=2).restore(7, like)
    assert meta == {"n": 1}
    for a, b in zip(jax.tree_util.tree_leaves(_to_saveable(restored)), jax.tree_util.tree_leaves(_to_saveable(states))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    bigger = Trainer(tiny("qmix", buffer_size=64))
    with pytest.raises(ValueError, match=r"buffer.*this run's is"):
        Checkpointer(tmp_path, keep=2).restore(7, jax.vmap(bigger.init)(seed_keys(0, 2)))
