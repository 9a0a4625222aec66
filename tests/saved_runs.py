"""Reading what a finished run left on disk, for the tests that compare two runs bit for bit
(test_resume.py, test_sweep.py)."""

import json
from pathlib import Path

import jax

from wqmix import config as cfg
from wqmix.checkpoint import Checkpointer
from wqmix.train import Trainer, seed_keys


def final_state(run_dir: Path):
    """(env steps, TrainState, host metadata) of the run's latest checkpoint."""
    config = cfg.from_dict(json.loads((run_dir / "config.json").read_text()))
    trainer = Trainer(config)
    like = jax.vmap(trainer.init)(seed_keys(config.seed, config.num_seeds))
    checkpointer = Checkpointer(run_dir, keep=config.log.keep_checkpoints)
    try:
        step = checkpointer.latest_step()
        state, meta = checkpointer.restore(step, like)
    finally:
        checkpointer.close()
    return step, state, meta


def metric_rows(run_dir: Path):
    """The metrics rows without their timings (wall time, steps/s), which differ between runs."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("wall_time", "steps_per_s")} for row in rows]
