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


def test_running_reward_moments_are_saved_and_restored(tiny, tmp_path):
    from wqmix.losses import RewardMoments

    base = tiny("qmix")
    config = dataclasses.replace(base, algo=dataclasses.replace(base.algo, standardise_rewards=True))
    trainer = Trainer(config)
    states = jax.vmap(trainer.init)(seed_keys(1, 2))
    moments = RewardMoments(mean=jax.numpy.array([0.5, -2.0]), var=jax.numpy.array([3.0, 0.25]),
                            seen=jax.numpy.array([136, 40], jax.numpy.int32))
    states = states.replace(learner=states.learner.replace(reward_moments=moments))
    checkpointer = Checkpointer(tmp_path, keep=2)
    checkpointer.save(24, states, {"n": 1})
    checkpointer.close()
    restored, _ = Checkpointer(tmp_path, keep=2).restore(24, jax.vmap(trainer.init)(seed_keys(0, 2)))
    for got, saved in zip(restored.learner.reward_moments, moments):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(saved))


def test_the_parameters_alone_restore_as_the_whole_state_has_them(tiny, tmp_path):
    """`restore_params` reads only `learner.params`: equal to the whole restore's, from a `like`
    of shapes alone, and another config's parameters are refused naming the array."""
    trainer = Trainer(tiny("qmix"))
    states = jax.vmap(trainer.init)(seed_keys(5, 2))
    checkpointer = Checkpointer(tmp_path, keep=2)
    checkpointer.save(40, states, {"n": 1})
    checkpointer.close()

    like = jax.eval_shape(jax.vmap(trainer.init), seed_keys(0, 2)).learner.params
    params = Checkpointer(tmp_path, keep=2).restore_params(40, like)
    saved = jax.tree_util.tree_flatten_with_path(states.learner.params)[0]
    got = jax.tree_util.tree_flatten_with_path(params)[0]
    assert [path for path, _ in got] == [path for path, _ in saved] and len(saved) > 4
    for (_, a), (_, b) in zip(got, saved):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    fresh = jax.vmap(trainer.init)(seed_keys(0, 2)).learner.params  # differs from the saved, so a no-op would fail
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(fresh), jax.tree_util.tree_leaves(params)))

    wider = dataclasses.replace(tiny("qmix"), network=dataclasses.replace(tiny("qmix").network, agent_hidden=16))
    with pytest.raises(ValueError, match=r"params.*this run's is"):
        Checkpointer(tmp_path, keep=2).restore_params(40, jax.eval_shape(
            jax.vmap(Trainer(wider).init), seed_keys(0, 2)).learner.params)
