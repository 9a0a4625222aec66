"""Run-directory files: atomic writes, JSONL appends, line truncation, the directory itself, run metadata
and the provenance record.

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


#: The run's record of where it came from, one JSON line per call that trained, evaluated or
#: rewrote the summary; appended, never rewritten, so a resumed or re-evaluated run keeps its history.
PROVENANCE = "provenance.jsonl"
#: Changed files listed in a record (the count is always complete). Ours: enough to see what changed.
MAX_CHANGED_FILES = 20


def git_output(args: list[str], cwd: Path) -> str | None:
    """What `git ARGS` prints in `cwd`; None where git is missing, fails or takes over 10 s."""
    import subprocess

    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def checkout_of(path: Path, tracked: bool = False) -> Path | None:
    """The top of the git checkout `path` sits in; None outside one, or where git is missing. With
    `tracked`, only a checkout that tracks `path`: an installed copy may sit in a virtual
    environment inside some other repository, whose commits say nothing about it."""
    top = git_output(["rev-parse", "--show-toplevel"], path)
    if top is None or (tracked and not (git_output(["ls-files", "--", "."], path) or "").strip()):
        return None
    return Path(top.strip()).resolve()


def git_provenance(source: Path | None = None) -> dict[str, Any]:
    """The commit of the code in `source` (default: this package) and what differs from it.

    `dirty`: any tracked file of the checkout differs from the commit (results written into the
    tree count). `code_dirty`: a file of the package itself, or `pyproject.toml`, differs or is
    untracked there: the code that ran is not the commit's. None where git is missing or `source`
    is not tracked by the checkout it sits in (an installed copy: its version is in the packages)."""
    source = Path(source or Path(__file__).resolve().parent)
    root = checkout_of(source, tracked=True)  # only a checkout that tracks the package tells its commit
    commit = git_output(["rev-parse", "HEAD"], source) if root is not None else None
    if commit is None:
        return {"commit": None, "dirty": None, "code_dirty": None, "changed_files": []}
    tracked = (git_output(["status", "--porcelain", "--untracked-files=no"], root) or "").splitlines()
    code = (git_output(["status", "--porcelain", "--untracked-files=all", "--", str(source), "pyproject.toml"], root)
            or "").splitlines()
    changed = sorted({line[3:] for line in tracked + code})
    return {"commit": commit.strip(), "dirty": bool(tracked), "code_dirty": bool(code),
            "changed_files": changed[:MAX_CHANGED_FILES], "num_changed_files": len(changed)}


def other_checkout(cwd: Path | None = None, package: Path | None = None) -> Path | None:
    """The wqmix checkout `cwd` (default: the current directory) sits in, when the `wqmix` that runs
    (`package`, default its folder) is another checkout's code (an editable install of another
    clone or worktree): a run started here would train with, and record, that other code. None
    elsewhere, and for an installed copy (which may well be this checkout's, installed)."""
    import wqmix

    here = checkout_of(Path(cwd or Path.cwd()))
    if here is None or not (here / "src" / "wqmix" / "__init__.py").is_file():
        return None
    package_checkout = checkout_of(Path(package or Path(wqmix.__file__).parent).resolve(), tracked=True)
    return here if package_checkout is not None and package_checkout != here else None


def machine_description() -> dict[str, Any]:
    """The host: name, OS, CPU model and count, memory."""
    import platform
    import socket

    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX
        pass
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "machine": platform.machine(),
            "cpu": cpu, "cpu_count": os.cpu_count(), "memory_bytes": memory}


def run_metadata(command: list[str] | None) -> dict[str, Any]:
    """Where a run came from: package versions, git commit of the code (and whether it differs
    from the commit), the machine, JAX backend, command, time."""
    import datetime
    import importlib.metadata
    import platform

    import jax

    versions = {}
    for package in ("wqmix", "jax", "jaxlib", "flax", "optax", "chex", "numpy", "rich"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "command": command,
        "start_time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": machine_description(),
        "packages": versions,
        "git": git_provenance(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
    }


def loaded_modules() -> list[str]:
    """The files of this package's modules loaded in this process so far, relative to the package's
    folder ("train.py", "learner/update.py"): the only code of the package that can have run."""
    import sys

    package = Path(__file__).resolve().parent
    files = set()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) if name == "wqmix" or name.startswith("wqmix.") else None
        if path:
            try:
                files.add(Path(path).resolve().relative_to(package).as_posix())
            except ValueError:  # a wqmix module from elsewhere (a test's stand-in)
                continue
    return sorted(files)


def record_provenance(run_dir: Path, event: str, metadata: dict[str, Any], *, modules: list[str] | None = None,
                      **details: Any) -> None:
    """Append one record to the run's `provenance.jsonl`: `event` ("train", "resume",
    "final-evaluation", "evaluate"), the call's `run_metadata`, `details` (env steps, files) and
    `modules`, by default the package's modules loaded by then (`loaded_modules`; the final
    evaluation's lists every one the training used)."""
    import datetime

    path = Path(run_dir) / PROVENANCE
    if not path.is_file() and event != "train":  # a run from before this file: its history first
        append_jsonl(path, read_provenance(run_dir))
    append_jsonl(path, [{
        "event": event, "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **details, **{k: v for k, v in metadata.items() if k != "start_time"}, "modules": loaded_modules() if modules is None else modules}])


def read_provenance(run_dir: Path) -> list[dict[str, Any]]:
    """The run's provenance records, oldest first.

    A run from before `provenance.jsonl` existed has only `meta.json` (its first call) and a
    `meta-resume-<unix time>.json` per later call: those come back as "train" and "resume"
    records, in time order, marked `"reconstructed": True`. Every call that reached its end wrote
    the summary, so the last of them is the one whose code ran the final evaluation."""
    run_dir = Path(run_dir)
    path = run_dir / PROVENANCE
    if path.is_file():
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records = []
    for meta in sorted(run_dir.glob("meta*.json")):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        records.append({"event": "train" if meta.name == "meta.json" else "resume", "time": data.get("start_time"),
                        "file": meta.name, "reconstructed": True, **data})
    return sorted(records, key=lambda r: (r.get("time") or "", r["event"] != "train"))
