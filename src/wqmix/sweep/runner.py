"""Running a sweep on Ray: each trial is one Ray task that trains an ordinary run directory
(`wqmix.driver.train_run`, all its seeds vmapped in one process), the driver (this process) keeps
the manifest and the progress.

Ray core tasks rather than Ray Tune: a trial here is a whole run with its own exact resume, run
directory and results tools, so Tune's trial runner, checkpoint syncing, result directories and
schedulers would sit beside ours rather than under them; tasks give scheduling by resources,
worker-death detection and cancellation, which is what is missing (docs/sweeps.md has the
measured costs).

Failures: a trial that raises is `failed` with its error (the rest goes on); a trial whose worker
process or node dies is run again, up to `retries` times, resuming from its last checkpoint. Ctrl-C
asks the running trials to stop at their next chunk end (each saves a checkpoint; a second Ctrl-C
kills them at once) and leaves them pending; running the same command again continues.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from wqmix.config import config_difference, from_dict, to_dict
from wqmix.run_dir import prepare_run_dir, write_json_atomic, write_text_atomic
from wqmix.sweep.manifest import Manifest, now
from wqmix.sweep.spec import SweepSpec, Trial, expand, params_label

#: Files a finished trial sends back to the driver (small; never checkpoints), so results reach
#: the sweep directory even when the worker's node does not share its filesystem.
RESULT_FILES = ("config.json", "meta.json", "provenance.jsonl", "summary.json", "metrics.csv", "metrics.jsonl")
#: XLA's persistent compilation cache of a sweep's trials, inside the sweep directory. Ours.
COMPILE_CACHE = ".compile-cache"
#: Environment variable of a node that keeps its trials on its own disk: where it sets it, a trial
#: runs in `$WQMIX_NODE_DIR/<sweep folder>-<hash of its path>/<trial>` rather than in the sweep
#: directory (a node that does not share the driver's filesystem, or must not write to it). Its
#: result files still come back to the sweep directory through the object store; its checkpoints
#: stay on that node, so a retry elsewhere after the node is lost starts the trial again.
NODE_DIR_ENV = "WQMIX_NODE_DIR"
#: Seconds the driver waits, after Ctrl-C, for running trials to save a checkpoint and stop. Ours.
STOP_GRACE_S = 120.0


def _has_checkpoint(run_dir: Path) -> bool:
    checkpoints = run_dir / "checkpoints"
    return checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())


def finished_summary(run_dir: Path, config: Any) -> dict[str, Any] | None:
    """The summary of a run in `run_dir` that trained `config` to its end, else None. A trial
    finished before its manifest knew (a `wqmix train` run adopted into a sweep, or a manifest
    entry lost) is not resumed: that would test its final policy again, rewrite its summary with
    this call's timings and add a provenance record."""
    try:
        stored = json.loads((run_dir / "config.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())  # written only when a run ends
    except (OSError, ValueError):
        return None
    if config_difference(stored, json.loads(json.dumps(to_dict(config)))) is not None:  # tuples as lists
        return None
    return summary if summary.get("total_env_steps", 0) >= config.train.total_env_steps else None


def run_trial(config_data: dict[str, Any], run_dir: str, attempt: int, command: list[str],
              compile_cache: str) -> dict[str, Any]:
    """The body of one trial's Ray task: train (or resume) the run in `run_dir`, compiled
    functions cached in `compile_cache`, unless it is finished already (`finished_summary`).
    Returns the summary, the small result files and where it ran."""
    import jax

    from wqmix.driver import train_run

    config = from_dict(config_data)
    path = prepare_run_dir(node_run_dir(Path(run_dir)))
    summary = finished_summary(path, config)
    if summary is not None:
        worker = json.loads((path / "worker.json").read_text()) if (path / "worker.json").is_file() else {}
        return _trial_result(path, summary, worker)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A sweep started as a background job (`cmd &`) hands its workers SIGINT ignored; the
        # sweep stops a trial with SIGINT (`ray.cancel`), which must land even while it compiles.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if not jax.config.jax_compilation_cache_dir:  # JAX_COMPILATION_CACHE_DIR, when set, wins
        # Trials of a sweep compile the same functions (parameter init, evaluation; the chunk too
        # when the swept field is not baked into it): XLA's persistent cache compiles each once.
        jax.config.update("jax_compilation_cache_dir", compile_cache)
    resume = (path / "config.json").is_file() and _has_checkpoint(path)
    worker = {"pid": os.getpid(), "host": socket.gethostname(), "node_id": _node_id(), "run_dir": str(path),
              "attempt": attempt, "resumed": resume, "started": now()}
    write_json_atomic(path / "worker.json", worker)
    summary = train_run(config, path, console=Console(stderr=True, quiet=True), command=command, resume=resume)
    return _trial_result(path, summary, worker)


def node_run_dir(run_dir: Path) -> Path:
    """Where a trial whose run directory in the sweep is `run_dir` runs on this node: there, or
    under the node's own `NODE_DIR_ENV` folder when its environment sets one."""
    node_dir = os.environ.get(NODE_DIR_ENV)
    if not node_dir:
        return run_dir
    sweep_dir = run_dir.parent.parent  # SWEEP/trials/TRIAL
    digest = hashlib.sha1(str(sweep_dir).encode()).hexdigest()[:8]
    return Path(node_dir) / f"{sweep_dir.name}-{digest}" / run_dir.name


def _node_id() -> str | None:
    """The Ray node this runs on (None outside a Ray worker)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 - where it ran is a record, never a reason to fail the trial
        return None


def _trial_result(path: Path, summary: dict[str, Any], worker: dict[str, Any]) -> dict[str, Any]:
    """What a trial's task returns: the summary, the small result files (they come back to the
    driver without a shared filesystem) and where it ran."""
    files = {name: (path / name).read_text() for name in RESULT_FILES if (path / name).is_file()}
    return {"summary": summary, "files": files, "worker": worker}


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C: the running trials were stopped and left pending."""


def run_sweep(spec: SweepSpec, sweep_dir: str | Path, address: str | None = None,
              max_concurrent: int | None = None, console: Console | None = None,
              source: str | None = None, trials: list[Trial] | None = None, merge: bool = False) -> Manifest:
    """Run every trial of `spec` not done yet under `sweep_dir` on Ray and return the manifest.

    `trials`: run these instead of `expand(spec)` (`wqmix reproduce` names its own); `merge`:
    the directory may hold other trials, which are kept (`Manifest.open`).

    `address`: a Ray cluster to join (else `RAY_ADDRESS`, else a local cluster is started for
    this sweep and stopped after it, even where `ray start` left one running; when Ray is already initialised in this process, that
    cluster is used and left running). `max_concurrent`: trials in flight at once (default: as
    many as the cluster's CPUs and GPUs hold). Raises SweepInterrupted on Ctrl-C."""
    console = console or Console(stderr=True)
    sweep_dir = prepare_run_dir(Path(sweep_dir))
    trials = {t.id: t for t in (expand(spec) if trials is None else trials)}
    manifest = Manifest.open(sweep_dir, spec, list(trials.values()), source, merge=merge)
    manifest.save()
    todo = [trials[i] for i in trials if manifest.trials[i]["status"] != "done"]
    if not todo:
        console.print(f"sweep {spec.name}: all {len(trials)} trials are done; nothing to run ({sweep_dir})")
        return manifest
    try:
        import ray
    except ImportError:
        raise ImportError('sweeps run on Ray, which is not installed: pip install "wqmix[sweep]"') from None

    own_cluster = not ray.is_initialized()
    if own_cluster:
        # "local" rather than nothing: left to itself, `ray.init()` joins the last cluster that
        # `ray start` (or any Ray test cluster) started on this machine, whoever started it.
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False,
                 log_to_driver=False, logging_level="WARNING")
    try:
        with _sigterm_as_ctrl_c():
            return _drive(ray, spec, manifest, list(trials), todo, max_concurrent, console, source)
    finally:
        if own_cluster:
            ray.shutdown()


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """`kill PID` (SIGTERM) stops a sweep as Ctrl-C does: the running trials save a checkpoint and
    stay pending. A sweep is a long job, often started in the background, where `kill` is how one
    stops it (and a shell starts a background job with SIGINT ignored). The handler `ray.init`
    sets in a driver (`sys.exit`) would end it at once and leave the manifest saying "running";
    this one takes its place while the sweep drives and gives it back after. A handler can be set
    only from the main thread; elsewhere the handlers stay as they are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _capacity(ray, spec: SweepSpec, max_concurrent: int | None) -> int:
    if max_concurrent:
        return max_concurrent
    resources = ray.cluster_resources()
    fits = resources.get("CPU", 0) // spec.resources.cpus
    if spec.resources.gpus:
        fits = min(fits, resources.get("GPU", 0) // spec.resources.gpus)
    return max(int(fits), 1)


def _drive(ray, spec: SweepSpec, manifest: Manifest, ids: list[str], todo: list[Trial],
           max_concurrent: int | None, console: Console, source: str | None) -> Manifest:
    """Run `todo` (of the trials `ids` this call is about) to the end, or until Ctrl-C."""
    options: dict[str, Any] = {"num_cpus": spec.resources.cpus, "num_gpus": spec.resources.gpus, "max_retries": 0}
    if 0 < spec.resources.gpus < 1:  # JAX would preallocate 75% of the GPU in each process sharing it
        options["runtime_env"] = {"env_vars": {"XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 * spec.resources.gpus:.3f}"}}
    task = ray.remote(run_trial).options(**options)
    capacity = _capacity(ray, spec, max_concurrent)
    queue = collections.deque(todo)
    running: dict[Any, Trial] = {}
    total = len(ids)
    compile_cache = str((manifest.sweep_dir / COMPILE_CACHE).resolve())

    def say(trial: Trial, text: str) -> None:
        label = params_label(trial.params, skip=())
        console.print(f"{time.strftime('%H:%M:%S')} {trial.id} ({label}) {text}" if label else
                      f"{time.strftime('%H:%M:%S')} {trial.id} {text}")

    def submit(trial: Trial) -> None:
        entry = manifest.trials[trial.id]
        attempt = entry["attempts"] + 1
        run_dir = str(manifest.run_dir(trial.id).resolve())
        command = ["wqmix", "sweep", source or spec.name]
        running[task.remote(entry["config"], run_dir, attempt, command, compile_cache)] = trial
        manifest.update(trial.id, status="running", attempts=attempt, started=now(), error=None)
        say(trial, "running" if attempt == 1 else f"running again (attempt {attempt})")

    def finish(ref: Any) -> None:
        trial = running.pop(ref)
        entry = manifest.trials[trial.id]
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # the trial raised: a Python error, or it was stopped
            cause = e.cause if e.cause is not None else e
            # Ctrl-C: cancelled by the sweep (TaskCancelledError is a RayTaskError), or SIGINT inside it
            if isinstance(e, ray.exceptions.TaskCancelledError) or isinstance(cause, KeyboardInterrupt):
                manifest.update(trial.id, status="pending")
                say(trial, "stopped (pending)")
                return
            try:  # the whole traceback beside the run; the manifest keeps one line
                write_text_atomic(manifest.run_dir(trial.id) / "error.txt", str(e) + "\n")
            except OSError:
                pass
            manifest.update(trial.id, status="failed", error=_one_line(cause), finished=now())
            say(trial, f"failed: {_one_line(cause)}")
        except ray.exceptions.RayError as e:  # its worker process or node died
            if entry["attempts"] <= spec.retries:
                manifest.update(trial.id, status="pending", error=_one_line(e))
                say(trial, f"lost its worker ({type(e).__name__}); retry {entry['attempts']}/{spec.retries} "
                           "from its last checkpoint")
                queue.appendleft(trial)
            else:
                manifest.update(trial.id, status="failed", finished=now(),
                                error=f"its worker died {entry['attempts']} times; last: {_one_line(e)}")
                say(trial, f"failed: its worker died {entry['attempts']} times")
        else:
            run_dir = manifest.run_dir(trial.id)
            run_dir.mkdir(parents=True, exist_ok=True)
            for name, text in result["files"].items():  # results come back without a shared filesystem
                target = run_dir / name
                if not target.is_file() or target.read_text() != text:
                    write_text_atomic(target, text)
            summary = result["summary"]
            manifest.update(trial.id, status="done", finished=now(), worker=result["worker"],
                            run_s=summary.get("total_run_s", summary["run_s"]))  # a resumed trial: all of it
            say(trial, f"done in {summary['compile_s'] + summary['run_s']:.1f} s")

    progress = Progress(TextColumn(f"sweep {spec.name}"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)
    console.print(f"sweep {spec.name}: {total} trials x {spec.base.num_seeds} seeds, {len(todo)} to run, "
                  f"{capacity} at a time -> {manifest.sweep_dir}")
    with progress:
        bar = progress.add_task("trials", total=total, completed=manifest.counts(ids)["done"])
        try:
            while queue or running:
                while queue and len(running) < capacity:
                    submit(queue.popleft())
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                for ref in ready:
                    finish(ref)
                progress.update(bar, completed=manifest.counts(ids)["done"])
        except KeyboardInterrupt:
            console.print("interrupted: the running trials save a checkpoint at their next chunk end and stop "
                          "(Ctrl-C again: stop them now); run the same command again to continue")
            _stop(ray, running, finish, manifest)
            raise SweepInterrupted() from None
    final = manifest.counts(ids)
    console.print(f"sweep {spec.name}: {final['done']} done, {final['failed']} failed of {total} "
                  f"-> {manifest.path}")
    return manifest


def _stop(ray, running: dict[Any, Trial], finish, manifest: Manifest) -> None:
    """Cancel the running trials (SIGINT: each saves a checkpoint at its chunk end), wait for them,
    and record each as it ends (done, failed or pending)."""
    for ref in running:
        ray.cancel(ref)
    try:
        ray.wait(list(running), num_returns=len(running), timeout=STOP_GRACE_S)
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref, force=True)
        ray.wait(list(running), num_returns=len(running), timeout=10)
    for ref in list(running):
        trial = running[ref]
        ready, _ = ray.wait([ref], timeout=0)
        if ready:
            finish(ref)
        else:
            running.pop(ref)
            manifest.update(trial.id, status="pending")
