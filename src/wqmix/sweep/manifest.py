"""The sweep manifest, `SWEEP_DIR/sweep.json`: every trial's id, swept values, resolved config,
status (pending, running, done, failed with its error), attempts and run directory. Written
atomically after every change, by the driver process only, so a kill never leaves it half-written.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from wqmix.config import config_difference, to_dict
from wqmix.errors import ConfigError
from wqmix.run_dir import write_json_atomic
from wqmix.sweep.spec import SweepSpec, Trial, params_label

MANIFEST = "sweep.json"
STATUSES = ("pending", "running", "done", "failed")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def finished_run(sweep_dir: Path, run_dir: str, config: dict[str, Any]) -> dict[str, Any] | None:
    """The summary of the finished run of `config` (a JSON-shaped config dict) in
    `sweep_dir/run_dir`, if one is there: a trial run elsewhere (another machine, another
    checkout) and copied in with its `config.json` and `summary.json` (which reaches the env steps
    the config asks for). None when there is none, or it stopped short (the sweep resumes it from
    its checkpoint). Raises ConfigError when that run has another config, which a rerun would
    overwrite."""
    path = Path(sweep_dir) / run_dir
    if not (path / "summary.json").is_file() or not (path / "config.json").is_file():
        return None
    try:
        found = json.loads((path / "config.json").read_text())
        summary = json.loads((path / "summary.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError("out", str(sweep_dir), f"holds an unreadable finished run at {run_dir} ({e}); "
                          "move it away or use another --out") from None
    where = config_difference(found, config)
    if where:
        raise ConfigError("out", str(sweep_dir), f"holds a finished run at {run_dir} with another config "
                          f"(differs at {where}); move it away or use another --out")
    if summary.get("total_env_steps", 0) < found.get("train", {}).get("total_env_steps", 0):
        return None
    return summary


def adopt_finished(sweep_dir: Path, entry: dict[str, Any]) -> bool:
    """Mark a trial the manifest does not know as done when its run directory already holds a
    finished run of the same config (`finished_run`), so a rerun of the grid does not train it
    again. Its `run_s` is the run's own training time (`total_run_s`)."""
    summary = finished_run(sweep_dir, entry["run_dir"], entry["config"])
    if summary is None:
        return False
    entry.update(status="done", run_s=summary.get("total_run_s", summary.get("run_s")), finished="adopted")
    return True


class Manifest:
    """The trials of one sweep directory and their state."""

    def __init__(self, sweep_dir: Path, data: dict[str, Any]):
        self.sweep_dir, self.data = Path(sweep_dir), data
        self.trials: dict[str, dict[str, Any]] = {t["id"]: t for t in data["trials"]}

    @property
    def path(self) -> Path:
        return self.sweep_dir / MANIFEST

    @classmethod
    def read(cls, sweep_dir: str | Path) -> Manifest:
        """The manifest of an existing sweep directory. Raises ValueError (one line) when there is none."""
        sweep_dir = Path(sweep_dir)
        path = sweep_dir / MANIFEST
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{sweep_dir}: not a sweep directory (cannot read {MANIFEST}: {e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("trials"), list):
            raise ValueError(f"{path}: not a wqmix sweep manifest (no 'trials' list)")
        return cls(sweep_dir, data)

    @classmethod
    def open(cls, sweep_dir: Path, spec: SweepSpec, trials: list[Trial], source: str | None,
             merge: bool = False) -> Manifest:
        """The manifest for running `trials` in `sweep_dir`: a new one, or the existing one when it
        holds the same trials (a rerun: done trials stay done, every other one becomes pending).
        With `merge` (`wqmix reproduce`, whose trials have stable names), the existing manifest
        may hold other trials too: they are kept as they are, and `trials` are added or rerun.
        Raises ConfigError when the directory holds a different sweep, or a trial of the same
        name with another config."""
        sweep_dir = Path(sweep_dir)
        # Through JSON, as the manifest stores it (tuples become lists), so reruns compare equal.
        entries = [{"id": t.id, "params": t.params, "config": json.loads(json.dumps(to_dict(t.config))),
                    "run_dir": f"trials/{t.id}",
                    "status": "pending", "attempts": 0, "error": None, "started": None, "finished": None,
                    "run_s": None, "worker": None} for t in trials]
        if (sweep_dir / MANIFEST).exists():
            manifest = cls.read(sweep_dir)
            old = manifest.trials
            ids = [e["id"] for e in entries]
            if ids != list(old) and not merge:
                raise ConfigError("out", str(sweep_dir), f"holds a different sweep ({len(old)} trials, the spec has "
                                  f"{len(entries)}); use another --out")
            for entry in entries:
                previous = old.get(entry["id"])
                if previous is None:  # a trial new to this directory (merge)
                    adopt_finished(sweep_dir, entry)
                    continue
                where = config_difference(previous["config"], entry["config"])
                if where:
                    raise ConfigError("out", str(sweep_dir), f"holds a different sweep ({entry['id']} differs at "
                                      f"{where}); use another --out")
                finished = (sweep_dir / previous["run_dir"] / "summary.json").is_file()
                if previous["status"] == "done" and finished:
                    entry.update(previous)
                else:
                    entry.update({k: previous.get(k) for k in ("attempts", "worker")}, status="pending")
            if merge:  # the directory's other trials stay as they are, first
                entries = [t for i, t in old.items() if i not in set(ids)] + entries
            manifest.data["trials"] = entries
            manifest.trials = {e["id"]: e for e in entries}
            return manifest
        for entry in entries:
            adopt_finished(sweep_dir, entry)
        data = {"name": spec.name, "spec": spec.data, "source": source, "swept_fields": spec.swept_fields,
                "created": now(), "updated": None, "trials": entries}
        return cls(sweep_dir, data)

    def update(self, trial_id: str, **fields: Any) -> None:
        """Set fields of one trial and write the manifest."""
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"unknown trial status {fields['status']!r}")
        self.trials[trial_id].update(fields)
        self.save()

    def save(self) -> None:
        self.data["updated"] = now()
        write_json_atomic(self.path, self.data)

    def run_dir(self, trial_id: str) -> Path:
        return self.sweep_dir / self.trials[trial_id]["run_dir"]

    def counts(self, ids: list[str] | None = None) -> dict[str, int]:
        """Trials per status, of all trials or of those named in `ids`."""
        counts = dict.fromkeys(STATUSES, 0)
        for trial in self.trials.values() if ids is None else (self.trials[i] for i in ids):
            counts[trial["status"]] += 1
        return counts

    def table(self) -> Table:
        """The manifest as a rich table: one row per trial, its swept values, status, attempts,
        training seconds and error (or run directory)."""
        counts = self.counts()
        table = Table(title=f"sweep {self.data.get('name', '')}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        for column in ("trial", "swept values", "status", "attempts", "train s", "run dir / error"):
            table.add_column(column, justify="right" if column in ("attempts", "train s") else "left")
        for trial in self.trials.values():
            run_s = trial.get("run_s")
            table.add_row(trial["id"], params_label(trial.get("params") or {}, skip=()), trial["status"],
                          str(trial.get("attempts", 0)), f"{run_s:.1f}" if run_s is not None else "-",
                          trial.get("error") or trial["run_dir"])
        return table
