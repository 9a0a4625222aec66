"""Run-directory files: atomic writes, JSONL appends, line truncation, the directory itself, run metadata.

Every write is such that a kill never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to a temporary file in the same folder, then rename it over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically (`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append whole lines, flushed to disk, one JSON object each."""
    with open(path, "a") as f:
        f.write("".join(json.dumps(row) + "\n" for row in rows))
        f.flush()
        os.fsync(f.fileno())


def truncate_lines(path: Path, keep: int) -> None:
    """Keep the first `keep` lines of a text file (atomically)."""
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(lines[:keep]))
    os.replace(tmp, path)


def prepare_run_dir(path: Path) -> Path:
    """Create the run directory and check it is writable, before anything is compiled."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise OSError(f"cannot write to the output directory {str(path)!r}: {e.strerror or e}") from None
    return path


def device_description() -> str:
    """The JAX backend and the device computations run on, as `wqmix train` and `wqmix bench`
    print them: e.g. "cpu (cpu:0)" or "gpu (cuda:0, NVIDIA H200; 1 device)"."""
    import jax

    devices = jax.devices()
    first = devices[0]
    kind = "" if first.device_kind == first.platform else f", {first.device_kind}"
    count = f"; {len(devices)} devices" if len(devices) > 1 else ""
    return f"{jax.default_backend()} ({first}{kind}{count})"


def run_metadata(command: list[str] | None) -> dict[str, Any]:
    """Where a run came from: package versions, git commit of the code, JAX backend, command, time."""
    import datetime
    import importlib.metadata
    import platform
    import subprocess

    import jax

    versions = {}
    for package in ("wqmix", "jax", "jaxlib", "flax", "optax", "chex", "numpy", "rich"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    source = Path(__file__).resolve().parent
    git: dict[str, Any] = {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                                    capture_output=True, text=True, timeout=10)
            git = {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "command": command,
        "start_time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "git": git,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
    }
