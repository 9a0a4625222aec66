"""The experiment driver: `train_run` and `eval_run` (compiled chunks, progress, checks, logs, checkpoints, summary)."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from wqmix.buffer import planned_bytes
from wqmix.checkpoint import Checkpointer, all_finite
from wqmix.config import Config, from_dict, to_dict, validate
from wqmix.envs.base import Environment, HostEnvironment
from wqmix.envs.check import check_env
from wqmix.envs.matrix_game import MatrixGame
from wqmix.host_rollout import HostRunner
from wqmix.evaluate import greedy_episodes, matrix_game_tables
from wqmix.loggers import RunLogger, check_logger_dependencies
from wqmix.errors import ConfigError
from wqmix.memory import available_bytes, release_freed_memory
from wqmix.run_dir import (device_description, prepare_run_dir, record_provenance, run_metadata, truncate_lines,
                           write_json_atomic)
from wqmix.train import ChunkMetrics, Trainer, TrainState, min_env_steps, seed_keys

_UPDATE_FIELDS = ("loss", "qmix_loss", "central_loss", "mean_weight", "grad_norm", "q_taken_mean",
                  "target_mean", "td_error_abs")


def chunk_rows(metrics: ChunkMetrics, states: TrainState, seeds: list[int], wall_time: float,
               steps_per_s: float, reports_wins: bool) -> list[dict[str, Any]]:
    """One metrics row per seed from a chunk's summed metrics (leading axis: seeds), with the
    factorisation's own metrics (`UpdateMetrics.extras`, e.g. the projector's) after the update's."""
    m = jax.tree_util.tree_map(np.asarray, metrics)
    env_steps, episodes, updates = (np.asarray(x) for x in (states.env_steps, states.episodes, states.updates))
    rows = []
    for i, seed in enumerate(seeds):
        learn = max(int(m.learn_iterations[i]), 1)
        finished = int(m.episodes[i])  # episodes that ended in this chunk (stream windows: maybe none)
        row: dict[str, Any] = {
            "seed": seed,
            "env_steps": int(env_steps[i]),
            "episodes": int(episodes[i]),
            "updates": int(updates[i]),
            "wall_time": round(wall_time, 3),
            "steps_per_s": round(steps_per_s, 1),
            "epsilon": round(float(m.epsilon[i]), 5),
            # None, not 0, when no episode ended: a 0 would read as a real return on the curves.
            "train_return": float(m.return_sum[i]) / finished if finished else None,
        }
        if reports_wins:
            row["train_win_rate"] = float(m.won_sum[i]) / finished if finished else None
        update = {**{name: getattr(m.update, name) for name in _UPDATE_FIELDS}, **m.update.extras}
        for name, value in update.items():
            row[name] = float(value[i]) / learn if m.learn_iterations[i] else None
        rows.append(row)
    return rows


def last_logged(metrics_jsonl: Path, key: str) -> dict[int, Any]:
    """seed -> the last value of `key` that is not None in a run's metrics.jsonl (seeds without
    one are absent)."""
    last: dict[int, Any] = {}
    if metrics_jsonl.exists():
        for line in metrics_jsonl.read_text().splitlines():
            row = json.loads(line)
            if row.get(key) is not None:
                last[row["seed"]] = row[key]
    return last


def chunk_stops(total: int, num_chunks: int, test_interval: int = 0) -> list[int]:
    """The env-step counts (per seed) at which the compiled chunks end, in increasing order:
    `num_chunks` evenly spaced stops (fewer when `total` is small) and the test stops
    (`test_stops`)."""
    stops = {int(round(total * (i + 1) / num_chunks)) for i in range(num_chunks)}
    return sorted(s for s in stops | set(test_stops(total, test_interval)) if s > 0)


def test_stops(total: int, test_interval: int) -> list[int]:
    """The chunk stops after which greedy test episodes run: the multiples of `test_interval`
    below `total`, and `total` (the curve's last point is the end of training); with
    `test_interval` 0, none of their own (every chunk is tested)."""
    return [*range(test_interval, total, test_interval), total] if test_interval > 0 else []


def test_episodes_per_test(total: int, num_tests: int, time_limit: int, requested: int) -> int:
    """Test episodes played at each test stop: `requested` (log.test_episodes), but no more than
    keeps all tests together within the run's training env steps (a 750-step run with 20 test
    episodes of 25 steps at every one of its stops would play more test steps than training
    steps), and at least one. Ours (issue 12): the official runner plays `test_nepisode` however
    short the run."""
    affordable = total // max(num_tests * time_limit, 1)
    return max(1, min(requested, affordable))


def _print_tables(console: Console, per_seed: list[dict[str, Any]]) -> None:
    for entry in per_seed:
        for key, title in (("q_tot", "Q_tot"), ("q_central", "Q-hat*")):
            values = entry.get(key)
            if values is None:
                continue
            table = Table(title=f"seed {entry['seed']}: learned {title}  (greedy joint action "
                                f"{tuple(entry['greedy_joint_action'])}, return {entry['greedy_return']:g})")
            table.add_column("agent 0 \\ agent 1")
            for j in range(len(values)):
                table.add_column(str(j), justify="right")
            for i, row in enumerate(values):
                table.add_row(str(i), *(f"{v:.1f}" for v in row))
            console.print(table)


class TrainingDiverged(RuntimeError):
    """NaN or inf appeared in the loss or the parameters."""


def _evaluator(trainer: Trainer, runner: HostRunner | None, num_episodes: int, params: Any):
    """evaluate(params, key) -> RolloutStats of greedy test episodes, axes (seeds, episodes), for
    learner parameters with a leading seed axis. Compiled here, ahead of the first test, for
    parameters shaped as `params`."""
    if runner is not None:
        return lambda params, key: runner.greedy_episodes(params["agent"], key, num_episodes)
    num_seeds = jax.tree_util.tree_leaves(params)[0].shape[0]
    episodes = jax.jit(jax.vmap(lambda params, key: greedy_episodes(trainer, params, key, num_episodes)))
    episodes = episodes.lower(params, jax.random.split(jax.random.key(0), num_seeds)).compile()
    return lambda params, key: episodes(params, jax.random.split(key, num_seeds))


def refuse_a_buffer_that_cannot_fit(trainer: Trainer) -> None:
    """The one-line ConfigError on train.buffer_size, before anything is compiled, when the
    replay buffers of all seeds would take more host memory than is available, and a warning
    when they would take more than half of it (compiling and sampling need memory beside them).
    CPU only: on a GPU they live in device memory, whose shortfall XLA reports itself. Envs with
    long episodes and large observations (Overcooked: 401 steps x 2 agents x 520 floats, and a
    state twice that) reach 17 GB at the default 5000 episodes; past the memory, the OS kills
    the run (and Ray the trials beside it)."""
    config = trainer.config
    if jax.default_backend() != "cpu":
        return
    available = available_bytes()
    need = planned_bytes(trainer.spec, config.train.buffer_size, trainer.stream_window) * config.num_seeds
    if available is None or need <= available // 2:
        return
    spec = trainer.spec
    if need <= available:
        print(f"warning: the replay buffer will take {need / 1e9:.1f} GB of the {available / 1e9:.1f} GB of memory "
              "available here; compiling and sampling need more beside it (lower train.buffer_size if the run "
              "is killed)", file=sys.stderr)
    else:
        raise ConfigError("train.buffer_size", config.train.buffer_size,
                          f"the replay buffer would take {need / 1e9:.1f} GB ({config.num_seeds} seed(s) x "
                          f"{config.train.buffer_size} episodes of up to {spec.time_limit} steps, obs "
                          f"{spec.num_agents} x {spec.obs_dim}, state {spec.state_dim}), more than the "
                          f"{available / 1e9:.1f} GB of memory available here; lower it")


def train_run(config: Config, out_dir: Path, console: Console | None = None,
              command: list[str] | None = None,
              make_env: Callable[[], Environment | HostEnvironment] | None = None,
              resume: bool = False) -> dict[str, Any]:
    """Train `config` (all its seeds, vmapped) and write the run directory. Returns the summary.

    `make_env` builds your own environment instead of `config.env` (a JAX `Environment`, or a
    `HostEnvironment` such as `PettingZooEnv`; host envs are built once per seed and env copy).
    `resume` continues the run in `out_dir` from its latest checkpoint; the result is the same,
    bit for bit, as a run that was never interrupted."""
    config = validate(config)
    console = console or Console(stderr=True, quiet=config.log.quiet)
    out_dir = prepare_run_dir(out_dir)
    env_name = config.env.name if make_env is None else None
    make_env = make_env or config.env.make
    trainer = Trainer(config, make_env())
    refuse_a_buffer_that_cannot_fit(trainer)
    env_name = env_name or type(trainer.env).__name__
    check = config.train.env_check
    env_warnings = [] if check == "off" else check_env(trainer.env, strict=check == "strict")
    for warning in env_warnings:  # on stderr even when quiet: a warning is not progress
        print(f"warning: {env_name}: {warning} (training goes on: train.env_check is warn)", file=sys.stderr)
    check_logger_dependencies(config.log.tensorboard, config.log.wandb)
    if not resume:
        write_json_atomic(out_dir / "config.json", to_dict(config))
    metadata = run_metadata(command)
    if not resume:
        write_json_atomic(out_dir / "meta.json", {**metadata, "env_check": {"mode": check, "warnings": env_warnings}})

    seeds = [config.seed + i for i in range(config.num_seeds)]
    total = config.train.total_env_steps
    stops = chunk_stops(total, config.log.num_chunks, config.log.test_interval)
    tested = set(test_stops(total, config.log.test_interval) or stops)

    t0 = time.perf_counter()
    states = jax.jit(jax.vmap(trainer.init))(seed_keys(config.seed, config.num_seeds))
    check_disk_space(out_dir, states, config.log.keep_checkpoints)
    checkpointer = Checkpointer(out_dir, keep=config.log.keep_checkpoints)
    next_chunk, elapsed_before, rows_written = 0, 0.0, 0
    if resume and checkpointer.latest_step() is not None:
        states, meta = checkpointer.restore(checkpointer.latest_step(), states)
        next_chunk, elapsed_before, rows_written = meta["next_chunk"], meta["elapsed"], meta["metric_rows"]
        console.print(f"resuming from the checkpoint at {checkpointer.latest_step():,} env steps")
    record_provenance(out_dir, "resume" if resume else "train", metadata, from_env_steps=min_env_steps(states),
                      env_check={"mode": check, "warnings": env_warnings})
    # Rows logged after the checkpoint will come again: cut them (the CSV also has a header).
    truncate_lines(out_dir / "metrics.jsonl", rows_written)
    truncate_lines(out_dir / "metrics.csv", rows_written + 1 if rows_written else 0)
    logger = RunLogger(out_dir, tensorboard=config.log.tensorboard, wandb=config.log.wandb,
                       wandb_project=config.log.wandb_project, wandb_mode=config.log.wandb_mode,
                       config_dict=to_dict(config), resume=rows_written > 0)
    console.print(f"[bold]wqmix[/] {config.algo.name} on {env_name}, seeds {seeds}, "
                  f"{total:,} env steps each, JAX on {device_description()} -> {out_dir}")
    runner = HostRunner(trainer, make_env, config.num_seeds) if isinstance(trainer.env, HostEnvironment) else None
    if runner is not None:  # the env steps in Python: acting and absorbing compile ahead of it
        with console.status("compiling ..."):
            runner.warm_up(states)
        run_chunk = runner.run_chunk
    else:
        jitted = jax.jit(trainer.run_chunk_seeds, donate_argnums=0)
        with console.status("compiling ..."):
            run_chunk = jitted.lower(states, jnp.int32(stops[0])).compile()
    # Every test stop and the final test of the summary.
    num_test_episodes = test_episodes_per_test(total, len(tested) + 1, trainer.spec.time_limit,
                                               config.log.test_episodes)
    if num_test_episodes < config.log.test_episodes:
        console.print(f"{num_test_episodes} test episode(s) per test, not log.test_episodes = "
                      f"{config.log.test_episodes}: {len(tested)} tests of up to {trainer.spec.time_limit} steps "
                      f"must not outnumber the {total:,} training steps")
    with console.status("compiling ..."):
        evaluate = _evaluator(trainer, runner, num_test_episodes, states.learner.params)
    release_freed_memory()  # the compiler's temporaries: see wqmix.memory
    eval_key = jax.random.fold_in(jax.random.key(config.seed), 1)
    compile_s = time.perf_counter() - t0

    # Ctrl-C, or SIGTERM (what schedulers and `kill` send): finish the chunk in flight, save a
    # checkpoint, stop cleanly.
    interrupted = []
    previous_handlers = {sig: signal.signal(sig, lambda *_: interrupted.append(True))
                         for sig in (signal.SIGINT, signal.SIGTERM)}
    progress = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} steps"), TextColumn("{task.fields[sps]} steps/s"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        TextColumn("return {task.fields[ret]}"), console=console, disable=config.log.quiet,
    )
    run_start = time.perf_counter()
    start_steps = min_env_steps(states)
    last_saved = start_steps
    rows: list[dict[str, Any]] = []

    def save(next_index: int) -> None:
        step = min_env_steps(states)
        if checkpointer.latest_step() == step:
            return  # this very state is saved already
        checkpointer.save(step, states, {
            "next_chunk": next_index, "metric_rows": rows_written,
            "elapsed": elapsed_before + time.perf_counter() - run_start})

    try:
        with progress:
            task = progress.add_task("training", total=total, completed=start_steps, sps="-", ret="-")
            for index in range(next_chunk, len(stops)):
                stop = stops[index]
                if min_env_steps(states) < stop:
                    states, metrics = run_chunk(states, jnp.int32(stop))
                    env_steps = min_env_steps(states)
                    check_finite(states, metrics, env_steps)
                    elapsed = time.perf_counter() - run_start
                    steps_per_s = (env_steps - start_steps) * len(seeds) / max(elapsed, 1e-9)
                    rows = chunk_rows(metrics, states, seeds, elapsed_before + time.perf_counter() - t0,
                                      steps_per_s, trainer.env.reports_wins)
                    if stop in tested:
                        test = evaluate(states.learner.params, jax.random.fold_in(eval_key, index))
                        for i, row in enumerate(rows):
                            row["test_return"] = float(np.mean(test.episode_return[i]))
                            if trainer.env.reports_wins:
                                row["test_win_rate"] = float(np.mean(test.episode_won[i]))
                    logger.log(rows)
                    rows_written += len(rows)
                    returns = [r["train_return"] for r in rows if r["train_return"] is not None]
                    progress.update(task, completed=min(env_steps, total), sps=f"{steps_per_s:,.0f}",
                                    ret=f"{np.mean(returns):.2f}" if returns else "-")
                    interval = config.log.checkpoint_interval
                    if interval and env_steps - last_saved >= interval:
                        save(index + 1)
                        last_saved = env_steps
                if interrupted:
                    save(index + 1)
                    console.print(f"interrupted: checkpoint saved at {min_env_steps(states):,} "
                                  f"env steps; continue with: wqmix train --resume {out_dir}")
                    raise KeyboardInterrupt
            save(len(stops))
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        checkpointer.close()
        logger.close()
    run_s = time.perf_counter() - run_start

    # Greedy test episodes of the final policy (the matrix game: its learned tables).
    test_stats = evaluate(states.learner.params, jax.random.fold_in(eval_key, len(stops)))
    if runner is not None:
        runner.close()  # its env worker processes, if any (else they end with this process)
    # From the log, not this call's last rows: a resumed run that had nothing left to train ran no chunk.
    final_train_returns = last_logged(out_dir / "metrics.jsonl", "train_return")
    seed_steps = np.asarray(states.env_steps)  # (seeds,)
    steps_all = int(seed_steps.sum())  # with the steps before a resume
    steps_run = steps_all - start_steps * seed_steps.size
    total_run_s = elapsed_before + run_s
    per_seed = []
    for i, seed in enumerate(seeds):
        entry: dict[str, Any] = {"seed": seed}
        if isinstance(trainer.env, MatrixGame):
            entry.update(matrix_game_tables(trainer, jax.tree_util.tree_map(lambda x: x[i], states.learner)))
        else:
            entry["greedy_return"] = float(jnp.mean(test_stats.episode_return[i]))
            entry["test_episodes"] = num_test_episodes
            if trainer.env.reports_wins:
                entry["test_win_rate"] = float(jnp.mean(test_stats.episode_won[i]))
        entry["final_train_return"] = final_train_returns.get(seed)
        per_seed.append(entry)

    summary = {
        "algo": config.algo.name,
        "env": env_name,
        "seeds": seeds,
        "total_env_steps": min_env_steps(states),
        "compile_s": round(compile_s, 2),
        "run_s": round(run_s, 2),
        "total_run_s": round(total_run_s, 2),  # with the time before a resume
        # This call's rate (all seeds); None when it trained nothing (a resume of a finished run).
        "env_steps_per_s": round(steps_run / max(run_s, 1e-9), 1) if steps_run else None,
        # The whole run's rate (all seeds, every call): what a resume of a finished run still knows.
        "total_env_steps_per_s": round(steps_all / total_run_s, 1) if total_run_s > 0 else None,
        "resumed": resume,
        "per_seed": per_seed,
    }
    write_json_atomic(out_dir / "summary.json", summary)
    # The code that evaluated the final policy: a resume of a finished run trains nothing but
    # evaluates again, so this may differ from the code that trained.
    record_provenance(out_dir, "final-evaluation", metadata, env_steps=summary["total_env_steps"],
                      file="summary.json")
    _print_tables(console, per_seed)
    rate = summary["env_steps_per_s"]
    console.print(f"compile {compile_s:.1f} s, training {run_s:.1f} s, "
                  f"{f'{rate:,.0f}' if rate is not None else 'no'} env steps/s (all seeds); outputs in {out_dir}")
    return summary


def check_finite(states: TrainState, metrics: ChunkMetrics, env_steps: int) -> None:
    """Stop with the step and the quantity when NaN or inf appeared; the last checkpoint
    (saved before this chunk) stays the last good one."""
    for name in ("loss", "grad_norm"):
        if not np.all(np.isfinite(np.asarray(getattr(metrics.update, name)))):
            raise TrainingDiverged(f"training diverged: the {name} is NaN or inf in the chunk ending at env step "
                                   f"{env_steps:,}; the last checkpoint is the last good state")
    ok, where = all_finite(states.learner.params)
    if not ok:
        raise TrainingDiverged(f"training diverged: parameter {where} is NaN or inf at env step {env_steps:,}; "
                               "the last checkpoint is the last good state")


def check_disk_space(out_dir: Path, states: TrainState, keep: int) -> None:
    """Fail before training when the disk cannot hold the checkpoints: `keep` of them plus the
    one being written, each about the size of the training state (replay buffer included)."""
    state_bytes = sum(np.asarray(leaf).nbytes for leaf in jax.tree_util.tree_leaves(
        states.replace(key=jax.random.key_data(states.key))))
    needed, free = state_bytes * (keep + 1), shutil.disk_usage(out_dir).free
    if free < needed:
        raise OSError(f"not enough free disk space in {out_dir}: {keep} checkpoints + 1 being written need about "
                      f"{needed / 1e9:.2f} GB ({state_bytes / 1e9:.2f} GB each), {free / 1e9:.2f} GB are free; "
                      "free some space or lower log.keep_checkpoints")


def restore_params(run_dir: Path, trainer: Trainer, checkpoint: int | None = None) -> tuple[int, Any]:
    """(env step, learner parameters with a leading seed axis) of the run's latest checkpoint, or
    of the one at env step `checkpoint`, `trainer` built from the run's config.json. Reads the
    parameters only (`Checkpointer.restore_params`). OSError where there is no such checkpoint."""
    config = trainer.config
    checkpointer = Checkpointer(run_dir, keep=config.log.keep_checkpoints)
    try:
        steps = checkpointer.all_steps()
        if not steps:
            raise OSError(f"{run_dir} has no checkpoint to evaluate")
        step = steps[-1] if checkpoint is None else checkpoint
        if step not in steps:
            raise OSError(f"{run_dir} has no checkpoint at env step {step}; it has {', '.join(map(str, steps))}")
        like = jax.eval_shape(jax.vmap(trainer.init), seed_keys(config.seed, config.num_seeds)).learner.params
        return step, checkpointer.restore_params(step, like)
    finally:
        checkpointer.close()


def eval_run(run_dir: Path, episodes: int | None = None, checkpoint: int | None = None,
             console: Console | None = None, render: Path | None = None,
             command: list[str] | None = None) -> dict[str, Any]:
    """Evaluate a saved policy without training: greedy (epsilon = 0) test episodes of every seed
    from the run's latest checkpoint (or the one at env step `checkpoint`). Writes
    `eval-<step>.json` into the run directory and returns its content.

    The call is appended to the run's provenance (`provenance.jsonl`, event "evaluate").

    `render`: also play one greedy episode of the first seed and draw it into this file (.png:
    a strip of frames, .gif: an animation); its path is then under "render" in the result.
    ValueError (before anything runs) for envs without a drawer, host (PettingZoo) envs included."""
    run_dir = Path(run_dir)
    console = console or Console(stderr=True)
    try:
        config = from_dict(json.loads((run_dir / "config.json").read_text()))
    except (OSError, json.JSONDecodeError) as e:
        raise OSError(f"{run_dir} is not a run directory with a readable config.json ({e})") from None
    trainer = Trainer(config)
    if render is not None:
        from wqmix.render import check_renderable  # imported here: matplotlib only for --render

        render = Path(render)
        if render.suffix.lower() not in (".png", ".gif"):
            raise ValueError(f"the render file must end with .png or .gif, got {render.name!r}")
        check_renderable(trainer.env)
    step, params = restore_params(run_dir, trainer, checkpoint)
    num_episodes = episodes or config.log.test_episodes
    runner = (HostRunner(trainer, config.env.make, config.num_seeds)
              if isinstance(trainer.env, HostEnvironment) else None)
    with console.status(f"evaluating {num_episodes} greedy episodes per seed ..."):
        stats = _evaluator(trainer, runner, num_episodes, params)(params, jax.random.fold_in(jax.random.key(config.seed), 2))
    if runner is not None:
        runner.close()
    seeds = [config.seed + i for i in range(config.num_seeds)]
    result: dict[str, Any] = {"checkpoint": step, "episodes": num_episodes, "per_seed": []}
    table = Table(title=f"{config.algo.name} on {config.env.name}, checkpoint at {step:,} env steps")
    for column in ("seed", "mean return", "std", "mean length") + (("win rate",) if trainer.env.reports_wins else ()):
        table.add_column(column, justify="right")
    for i, seed in enumerate(seeds):
        returns = np.asarray(stats.episode_return[i])
        entry = {"seed": seed, "mean_return": float(returns.mean()), "std_return": float(returns.std()),
                 "mean_length": float(np.mean(stats.episode_length[i]))}
        cells = [str(seed), f"{entry['mean_return']:.3f}", f"{entry['std_return']:.3f}", f"{entry['mean_length']:.1f}"]
        if trainer.env.reports_wins:
            entry["win_rate"] = float(np.mean(stats.episode_won[i]))
            cells.append(f"{entry['win_rate']:.3f}")
        result["per_seed"].append(entry)
        table.add_row(*cells)
    write_json_atomic(run_dir / f"eval-{step}.json", result)
    record_provenance(run_dir, "evaluate", run_metadata(command), env_steps=step, file=f"eval-{step}.json",
                      episodes=num_episodes)
    Console().print(table)
    if render is not None:
        from wqmix.render import play_greedy_episode, render_episode  # imported here: matplotlib only for --render

        with console.status(f"rendering a greedy episode of seed {seeds[0]} ..."):
            frames = play_greedy_episode(trainer, jax.tree_util.tree_map(lambda x: x[0], params["agent"]),
                                         jax.random.fold_in(jax.random.key(config.seed), 3))
            drawn = render_episode(trainer.env, frames, render)
        result["render"] = str(render)
        write_json_atomic(run_dir / f"eval-{step}.json", result)
        print(f"rendered a greedy episode of seed {seeds[0]} ({len(frames) - 1} steps, {drawn} frames): {render}")
    return result
