"""Where the per-chunk metric rows of a run go: JSONL and CSV always, TensorBoard and W&B on request.

`RunLogger.log(rows)` takes the rows of one chunk, one dict per seed (see `wqmix.driver.chunk_rows`),
and writes them to every enabled sink before it returns:

* `metrics.jsonl` - one JSON object per row, whole lines, flushed and fsynced
  (`wqmix.run_dir.append_jsonl`).
* `metrics.csv` - one line per row. The header is `CSV_COLUMNS` in that order, then any other
  keys of the first rows logged, sorted by name. `None` is an empty cell; lists and dicts are
  JSON. A key first seen after the header was written is left out of the CSV (with one warning
  per key); it is still in `metrics.jsonl`. Flushed and fsynced on every call.
* TensorBoard (`tensorboard=True`, needs `tensorboardX`, not TensorFlow):
  `out_dir/tensorboard/seed_{seed}/events.out.tfevents.*`, one scalar per numeric field, tag from
  `TENSORBOARD_TAGS` (other numeric keys: `extra/{key}`), global step = the row's `env_steps`.
  The event records are written synchronously (tensorboardX's `EventsWriter`, the file layer under
  `SummaryWriter`; `SummaryWriter` queues events to a background thread that its `flush()` does
  not wait for), so everything logged is on disk, fsynced, when `log` returns.
* Weights & Biases (`wandb=True`, needs `wandb`, which is not a dependency): ONE wandb run for the
  whole run directory (name and group = `out_dir.name`, `config = config_dict`, files under
  `out_dir/wandb`), default mode "offline" (no login, no network; `wandb sync` uploads it later).
  Each seed's values are keys `seed_{seed}/{tag}` with the TensorBoard tags, and each seed has its
  own x axis: `seed_{seed}/env_steps`, declared with
  `define_metric("seed_{seed}/*", step_metric="seed_{seed}/env_steps")`. One `run.log` per chunk
  (wandb's own `_step` counts chunks); no explicit `step=` is passed, because the seeds of one
  chunk have slightly different env_steps and wandb drops any row whose step goes backwards.
  Why one run rather than one per seed: several live runs in one process need
  `reinit="create_new"` (recent wandb only); one run works with every wandb version.
  The run id is kept in `out_dir/wandb_run_id.txt`; with `resume=True` the same id is passed
  with `resume="allow"`.

With `resume=False` the JSONL and CSV files are created empty (a header is written on the first
`log`) and old event files under `out_dir/tensorboard/seed_*/` are deleted. With `resume=True`
both files are appended to, the CSV keeps its existing header (and its column order), a torn last
line (a kill in mid-write) is dropped first, and TensorBoard writes a new event file next to the
old ones.

A missing optional package is reported, before any file is touched, as a `ConfigError` naming the
option (`TENSORBOARD_OPTION`, `WANDB_OPTION`) and the `pip install` that fixes it.
"""

from __future__ import annotations

import csv
import io
import json
import numbers
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from wqmix.errors import ConfigError
from wqmix.run_dir import append_jsonl

CSV_COLUMNS: tuple[str, ...] = (
    "seed", "env_steps", "episodes", "updates", "wall_time", "steps_per_s", "epsilon", "train_return",
    "loss", "qmix_loss", "central_loss", "mean_weight", "grad_norm", "q_taken_mean", "target_mean",
    "td_error_abs", "train_win_rate", "test_return", "test_win_rate",
)
"""The fixed leading columns of metrics.csv, in this order."""

TENSORBOARD_TAGS: dict[str, str] = {
    "train_return": "train/return",
    "train_win_rate": "train/win_rate",
    "epsilon": "train/epsilon",
    "test_return": "test/return",
    "test_win_rate": "test/win_rate",
    "loss": "loss/total",
    "qmix_loss": "loss/qmix",
    "central_loss": "loss/central",
    "mean_weight": "learner/mean_weight",
    "grad_norm": "learner/grad_norm",
    "q_taken_mean": "learner/q_taken_mean",
    "target_mean": "learner/target_mean",
    "td_error_abs": "learner/td_error_abs",
    "q_mono_abs": "projector/q_mono_abs",
    "q_proj_abs": "projector/q_proj_abs",
    "omega_mean": "projector/omega_mean",
    "abs_advantage": "projector/abs_advantage_running_mean",
    "episodes": "progress/episodes",
    "updates": "progress/updates",
    "wall_time": "progress/wall_time_s",
    "steps_per_s": "progress/steps_per_s",
}
"""Row key -> TensorBoard tag (and W&B key after `seed_{seed}/`). `seed` and `env_steps` are not
scalars: the seed is the directory (W&B: the prefix), env_steps the step. Other numeric keys get
`extra/{key}`; non-numeric values (None, strings, lists) are skipped."""

TENSORBOARD_OPTION = "log.tensorboard"
WANDB_OPTION = "log.wandb"
"""The option names used in the missing-package errors."""

WANDB_ID_FILE = "wandb_run_id.txt"


def tag_for(key: str) -> str:
    """The TensorBoard tag / W&B key suffix of a row key."""
    return TENSORBOARD_TAGS.get(key, f"extra/{key}")


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    """The row's numeric values (bool as 0/1, NaN kept), keyed by tag."""
    out = {}
    for key, value in row.items():
        if key in ("seed", "env_steps") or value is None:
            continue
        if isinstance(value, numbers.Real):  # int, float, bool, numpy integer/floating scalars
            out[tag_for(key)] = float(value)
    return out


def _import_tensorboardx() -> Any:
    """tensorboardX's synchronous event writer and protos, or a ConfigError saying what to install."""
    try:
        import tensorboardX  # noqa: F401 - first, so that a blocked package fails here
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto import event_pb2, summary_pb2
    except ImportError as e:
        raise ConfigError(TENSORBOARD_OPTION, True, f"TensorBoard logging needs the tensorboardX package, which "
                          f"could not be imported ({e}); pip install tensorboardX, or turn the option off") from None
    return EventsWriter, event_pb2, summary_pb2


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError as e:
        raise ConfigError(WANDB_OPTION, True, f"Weights & Biases logging needs the wandb package, which could not "
                          f"be imported ({e}); pip install wandb, or turn the option off") from None
    return wandb


def check_logger_dependencies(tensorboard: bool, wandb: bool) -> None:
    """Raise the missing-package ConfigError now (e.g. before compiling), not at the first chunk."""
    if tensorboard:
        _import_tensorboardx()
    if wandb:
        _import_wandb()


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that has no newline (a write killed half-way) off an existing file."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    with open(path, "r+b") as f:
        f.truncate(data.rfind(b"\n") + 1)
        f.flush()
        os.fsync(f.fileno())


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


class RunLogger:
    """Writes each chunk's metric rows to metrics.jsonl, metrics.csv and, optionally, TensorBoard
    and W&B (see the module docstring). Use as a context manager, or call `close()`."""

    def __init__(self, out_dir: Path, tensorboard: bool = False, wandb: bool = False,
                 wandb_project: str = "wqmix", wandb_mode: str = "offline",
                 config_dict: dict[str, Any] | None = None, resume: bool = False):
        self.out_dir = Path(out_dir)
        self.resume = resume
        # Optional packages first: a missing one fails before any file is touched.
        self._tb = _import_tensorboardx() if tensorboard else None
        wandb_module = _import_wandb() if wandb else None

        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.out_dir / "metrics.jsonl"
        self.csv_path = self.out_dir / "metrics.csv"
        self.columns: list[str] | None = None
        if resume:
            for path in (self.jsonl_path, self.csv_path):
                _drop_torn_tail(path)
            if self.csv_path.exists() and self.csv_path.stat().st_size:
                with open(self.csv_path, newline="") as f:
                    self.columns = next(csv.reader(f), None) or None
        else:
            for path in (self.jsonl_path, self.csv_path):
                path.write_text("")
        self._warned: set[str] = set()
        self._closed = False

        self.tensorboard_dir = self.out_dir / "tensorboard"
        self._tb_writers: dict[Any, Any] = {}
        if self._tb is not None and not resume and self.tensorboard_dir.is_dir():
            for old in self.tensorboard_dir.glob("seed_*/events.out.tfevents.*"):
                old.unlink()

        self.wandb_run = None
        self._wandb_seeds: set[Any] = set()
        if wandb_module is not None:
            id_path = self.out_dir / WANDB_ID_FILE
            run_id = id_path.read_text().strip() if resume and id_path.exists() else ""
            if not run_id:
                run_id = uuid.uuid4().hex[:8]
                id_path.write_text(run_id + "\n")
            self.wandb_run = wandb_module.init(
                project=wandb_project, mode=wandb_mode, dir=str(self.out_dir), name=self.out_dir.name,
                group=self.out_dir.name, config=dict(config_dict or {}), id=run_id,
                resume="allow" if resume else None,
            )

    # -- sinks -----------------------------------------------------------------------------------

    def _write_csv(self, rows: list[dict[str, Any]]) -> None:
        header = None
        if self.columns is None:
            extra = sorted({key for row in rows for key in row} - set(CSV_COLUMNS))
            self.columns = [*CSV_COLUMNS, *extra]
            header = self.columns
        known = set(self.columns)
        for key in sorted({key for row in rows for key in row} - known - self._warned):
            self._warned.add(key)
            warnings.warn(f"metrics.csv has no column {key!r} (it appeared after the header was written); "
                          f"it is kept in metrics.jsonl only", RuntimeWarning, stacklevel=3)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        for row in rows:
            writer.writerow([_csv_cell(row.get(key)) for key in self.columns])
        with open(self.csv_path, "a", newline="") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())

    def _tb_writer(self, seed: Any) -> Any:
        writer = self._tb_writers.get(seed)
        if writer is None:
            events_writer, _, _ = self._tb
            logdir = self.tensorboard_dir / f"seed_{seed}"
            logdir.mkdir(parents=True, exist_ok=True)
            # A unique suffix: two writers in one second (a resume) must not truncate each other's file.
            writer = events_writer(str(logdir / "events"), f".{os.getpid()}.{uuid.uuid4().hex[:8]}")
            self._tb_writers[seed] = writer
        return writer

    def _write_tensorboard(self, rows: list[dict[str, Any]]) -> None:
        _, event_pb2, summary_pb2 = self._tb
        touched = []
        for row in rows:
            scalars = _scalars(row)
            if not scalars:
                continue
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)
                                                 for tag, value in scalars.items()])
            writer = self._tb_writer(row["seed"])
            writer.write_event(event_pb2.Event(wall_time=time.time(), step=int(row["env_steps"]), summary=summary))
            touched.append(writer)
        for writer in touched:
            writer.flush()

    def _write_wandb(self, rows: list[dict[str, Any]]) -> None:
        payload: dict[str, float] = {}
        for row in rows:
            prefix = f"seed_{row['seed']}"
            if row["seed"] not in self._wandb_seeds:
                self.wandb_run.define_metric(f"{prefix}/env_steps")
                self.wandb_run.define_metric(f"{prefix}/*", step_metric=f"{prefix}/env_steps")
                self._wandb_seeds.add(row["seed"])
            payload[f"{prefix}/env_steps"] = int(row["env_steps"])
            payload.update({f"{prefix}/{tag}": value for tag, value in _scalars(row).items()})
        self.wandb_run.log(payload)

    # -- public ----------------------------------------------------------------------------------

    def log(self, rows: list[dict[str, Any]]) -> None:
        """Write the rows of one chunk (one per seed; each has at least `seed` and `env_steps`)."""
        if self._closed:
            raise RuntimeError("RunLogger.log called after close()")
        rows = list(rows)
        if not rows:
            return
        for row in rows:
            missing = [key for key in ("seed", "env_steps") if row.get(key) is None]
            if missing:
                raise ValueError(f"a metrics row needs {missing}: {row!r}")
        append_jsonl(self.jsonl_path, rows)
        self._write_csv(rows)
        if self._tb is not None:
            self._write_tensorboard(rows)
        if self.wandb_run is not None:
            self._write_wandb(rows)

    def close(self, exit_code: int | None = None) -> None:
        """Close the event files and finish the W&B run. Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        for writer in self._tb_writers.values():
            writer.close()
        self._tb_writers.clear()
        if self.wandb_run is not None:
            if exit_code is None:
                self.wandb_run.finish()
            else:
                self.wandb_run.finish(exit_code=exit_code)

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(exit_code=1 if exc_type is not None else None)
