"""Results across seeds, the way rliable recommends.

Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS
2021; the `rliable` library) recommend reporting, for a handful of runs per task:

* aggregate scores that are robust yet efficient: the interquartile mean (IQM) next to the
  mean and the median;
* interval estimates: percentile confidence intervals from a *stratified* bootstrap, which
  resamples runs with replacement independently within each task (stratum);
* learning curves with the uncertainty of the estimate shown (here a bootstrap CI of the mean
  over seeds at every point of a common grid).

Everything here is NumPy; `plot_curves` imports matplotlib (Agg, no display) on first use.

A sweep directory (written by `wqmix sweep`) holds `sweep.json` and one run directory per trial;
naming it stands for its finished trials, each labelled with its swept values (`variant`), so
tables and plots give one row / curve per combination.

A run directory (written by `wqmix train`) holds `summary.json` (`algo`, `env`, `seeds`,
`per_seed`: one entry per seed with `greedy_return` and, on envs that report wins,
`test_win_rate`), `metrics.jsonl` (one row per seed per chunk: `seed`, `env_steps`,
`train_return`, sometimes `test_return`) and `config.json`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from wqmix.sweep.spec import params_label

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_LAST_K",
    "DEFAULT_REPS",
    "ResultRow",
    "Run",
    "RunDirError",
    "aggregate",
    "format_markdown",
    "iqm",
    "last_tests",
    "load_runs",
    "load_sweep",
    "params_label",
    "plot_curves",
    "results_table",
    "stratified_bootstrap_ci",
    "with_last_tests",
    "write_csv",
]

#: Bootstrap resamples. Ours: rliable's `get_interval_estimates` defaults to 50,000; 2,000 keeps a
#: table of a few (algo, env) pairs well under a second, and the percentile endpoints of a 95% CI
#: move by far less than the table's three decimals for the handful of seeds a run has.
DEFAULT_REPS = 2000
#: Confidence level of every interval: 95%, rliable's default (`confidence_interval_size=0.95`).
DEFAULT_CONFIDENCE = 0.95
#: Points of the common env_steps grid curves are interpolated onto when seeds logged at different
#: steps. Ours.
CURVE_GRID_POINTS = 100


class RunDirError(ValueError):
    """A run directory that cannot be read; the message is one line naming the path."""


# --------------------------------------------------------------------------------------------
# Aggregate statistics
# --------------------------------------------------------------------------------------------

def _as_scores(x: Any, what: str = "scores") -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError(f"{what}: needs at least one value")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: values must be finite (got {a[~np.isfinite(a)][:3].tolist()})")
    return a


def iqm(x: Any, fractional: bool = False) -> float:
    """Interquartile mean: the mean of the middle 50% of the (flattened) scores.

    Default (`fractional=False`) is exactly rliable's IQM, `scipy.stats.trim_mean(x, 0.25)`: sort,
    drop `floor(0.25 * n)` values at each end, average the rest. When `n` is not a multiple of 4
    this keeps slightly more than half of the values (n = 10: the middle 6), i.e. scipy trims
    conservatively and does *not* weight the boundary points.

    `fractional=True` (ours) averages exactly the middle half of the empirical distribution: the
    values between ranks 0.25 n and 0.75 n, the two boundary values weighted by the fraction of
    them that lies inside (n = 10: weights 0.5, 1, 1, 1, 1, 1, 0.5 on the sorted values 3..9).
    Both agree whenever `n` is a multiple of 4.
    """
    a = np.sort(_as_scores(x))
    n = a.size
    if not fractional:
        cut = int(0.25 * n)
        return float(np.mean(a[cut:n - cut]))
    # Weight of sorted value i = length of [i, i+1) ∩ [n/4, 3n/4), over n/2.
    lo, hi = 0.25 * n, 0.75 * n
    edges = np.arange(n + 1, dtype=np.float64)
    weights = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)
    return float(np.dot(weights, a) / weights.sum())


def aggregate(scores: Any) -> dict[str, float]:
    """Mean, median and IQM of the (flattened) scores: the three point estimates rliable reports."""
    a = _as_scores(scores)
    return {"mean": float(np.mean(a)), "median": float(np.median(a)), "iqm": iqm(a)}


def stratified_bootstrap_ci(scores_by_task: Mapping[str, Any], statistic: Callable[[np.ndarray], float],
                            reps: int = DEFAULT_REPS, confidence: float = DEFAULT_CONFIDENCE,
                            seed: int = 0) -> tuple[float, float]:
    """Percentile confidence interval of `statistic` by the stratified bootstrap.

    Each resample draws, for every task independently, as many runs as that task has, with
    replacement from that task's runs only (the task is the stratum: rliable's
    `StratifiedBootstrap`), concatenates the draws in the mapping's order into one 1-D array and
    applies `statistic` to it. The interval is the (1 - confidence)/2 and (1 + confidence)/2
    percentiles of the `reps` statistics (rliable's default `method='percentile'`).

    `reps` default 2,000: ours (rliable: 50,000; see DEFAULT_REPS). `confidence` default 0.95:
    rliable's. `seed` makes the interval reproducible (NumPy's default generator).
    """
    if not scores_by_task:
        raise ValueError("scores_by_task: needs at least one task")
    if reps < 1:
        raise ValueError(f"reps = {reps!r} is invalid: must be a positive integer")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence = {confidence!r} is invalid: must be in (0, 1)")
    arrays = [_as_scores(v, f"scores of task {k!r}") for k, v in scores_by_task.items()]
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([a[rng.integers(0, a.size, size=(reps, a.size))] for a in arrays], axis=1)
    stats = np.fromiter((statistic(row) for row in pooled), dtype=np.float64, count=reps)
    alpha = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(stats, [alpha, 100.0 - alpha])
    return float(lo), float(hi)


def _bootstrap_mean_ci(y: np.ndarray, reps: int, confidence: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI of the mean over rows (seeds) of `y` [seeds, points], at every column."""
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    means = y[rng.integers(0, n, size=(reps, n))].mean(axis=1)  # [reps, points]
    alpha = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(means, [alpha, 100.0 - alpha], axis=0)
    return lo, hi


# --------------------------------------------------------------------------------------------
# Run directories
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    """One run directory: final test scores per seed and learning curves per seed.

    `score_metric` is `test_win_rate` when every seed of the run has one (SMAX), else
    `greedy_return`. `curve_metric` is `test_win_rate` when the run logged it on any metrics
    row, else `test_return` when it logged that (rows without it are skipped), else
    `train_return`. `curves[seed] = (env_steps, values)`,
    sorted by env_steps.
    """

    path: Path
    algo: str
    env: str
    seeds: list[int]
    scores: dict[int, float]
    score_metric: str
    curves: dict[int, tuple[np.ndarray, np.ndarray]]
    curve_metric: str
    variant: str = ""
    """The swept values of a sweep trial, e.g. "algo.alpha=0.1" (`params_label`); "" for a run."""


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RunDirError(f"{path}: {what} is not valid JSON ({e})") from None
    except OSError as e:
        raise RunDirError(f"{path}: cannot read {what} ({e.strerror or e})") from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _read_csv_rows(path: Path) -> list[dict[str, Any]]:
    """metrics.csv as rows of numbers (empty cells left out): what a committed run keeps."""
    try:
        with open(path, newline="") as f:
            return [{k: (int(v) if k in ("seed", "env_steps") else float(v)) for k, v in row.items() if v not in ("", None)}
                    for row in csv.DictReader(f)]
    except (OSError, ValueError) as e:
        raise RunDirError(f"{path}: cannot read metrics.csv ({e})") from None


def _read_curves(path: Path, seeds: list[int]) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], str]:
    """Curves from metrics.jsonl, else from metrics.csv beside it."""
    rows: list[dict[str, Any]] = []
    if not path.is_file():
        if not path.with_suffix(".csv").is_file():
            return {}, "train_return"
        rows = _read_csv_rows(path.with_suffix(".csv"))
        lines = []
    else:
        try:
            lines = path.read_text().splitlines()
        except OSError as e:
            raise RunDirError(f"{path}: cannot read metrics.jsonl ({e.strerror or e})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise RunDirError(f"{path}: line {number} is not valid JSON ({e})") from None
        if not isinstance(row, dict):
            raise RunDirError(f"{path}: line {number} is not a JSON object")
        rows.append(row)
    # The win rate where the env reports one (SMAX: what its scores are), else the test return.
    metric = next((m for m in ("test_win_rate", "test_return")
                   if any(_number(r.get(m)) is not None for r in rows)), "train_return")
    points: dict[int, dict[float, float]] = {}
    for row in rows:
        seed, x, y = row.get("seed"), _number(row.get("env_steps")), _number(row.get(metric))
        if x is None or y is None or seed not in seeds:
            continue  # also rows of seeds summary.json does not list
        points.setdefault(seed, {})[x] = y  # a repeated env_steps keeps its last value
    curves = {}
    for seed in sorted(points):
        xs = np.array(sorted(points[seed]), dtype=np.float64)
        curves[seed] = (xs, np.array([points[seed][x] for x in xs], dtype=np.float64))
    return curves, metric


def load_sweep(path: str | Path) -> list[Run]:
    """The finished trials of a sweep directory, each with its swept values as `variant`.
    Raises RunDirError when the manifest cannot be read or no trial is finished."""
    path = Path(path)
    manifest = _read_json(path / "sweep.json", "sweep.json")
    trials = manifest.get("trials") if isinstance(manifest, dict) else None
    if not isinstance(trials, list) or not all(isinstance(t, dict) for t in trials):
        raise RunDirError(f"{path / 'sweep.json'}: not a wqmix sweep manifest (no 'trials' list)")
    runs = [dataclasses.replace(load_run(path / t["run_dir"]), variant=params_label(t.get("params") or {}))
            for t in trials if t.get("status") == "done"]
    if not runs:
        raise RunDirError(f"{path}: no finished trial yet ({len(trials)} trials; see wqmix sweep status {path})")
    return runs


def load_run(path: str | Path) -> Run:
    """Read one run directory. Raises RunDirError (one line naming the path) when it cannot."""
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path}: no such directory")
    if not path.is_dir():
        raise RunDirError(f"{path}: not a directory")
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise RunDirError(f"{path}: no summary.json (not a finished wqmix run directory?)")
    summary = _read_json(summary_path, "summary.json")
    if not isinstance(summary, dict):
        raise RunDirError(f"{summary_path}: must hold a JSON object")

    config: dict[str, Any] = {}
    if (path / "config.json").is_file():
        loaded = _read_json(path / "config.json", "config.json")
        config = loaded if isinstance(loaded, dict) else {}

    def name(section: str) -> str:
        value = summary.get(section)
        if not isinstance(value, str) or not value:
            value = (config.get(section) or {}).get("name") if isinstance(config.get(section), dict) else None
        if not isinstance(value, str) or not value:
            raise RunDirError(f"{summary_path}: no {section!r} name (in summary.json or config.json)")
        return value

    algo, env = name("algo"), name("env")
    per_seed = summary.get("per_seed")
    if not isinstance(per_seed, list) or not per_seed or not all(isinstance(e, dict) for e in per_seed):
        raise RunDirError(f"{summary_path}: 'per_seed' must be a non-empty list of objects")
    seeds = []
    for i, entry in enumerate(per_seed):
        seed = entry.get("seed")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise RunDirError(f"{summary_path}: per_seed[{i}] has no integer 'seed'")
        seeds.append(seed)
    if len(set(seeds)) != len(seeds):
        raise RunDirError(f"{summary_path}: per_seed repeats a seed ({seeds})")
    metric = ("test_win_rate" if all(_number(e.get("test_win_rate")) is not None for e in per_seed)
              else "greedy_return")
    scores = {}
    for seed, entry in zip(seeds, per_seed):
        value = _number(entry.get(metric))
        if value is None:
            raise RunDirError(f"{summary_path}: seed {seed} has no finite {metric!r}")
        scores[seed] = value
    curves, curve_metric = _read_curves(path / "metrics.jsonl", seeds)
    return Run(path=path, algo=algo, env=env, seeds=seeds, scores=scores, score_metric=metric,
               curves=curves, curve_metric=curve_metric)


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Read run directories (a sweep directory stands for its finished trials), in the given
    order. Raises RunDirError naming the first bad path."""
    runs = [run for p in paths
            for run in (load_sweep(p) if (Path(p) / "sweep.json").is_file() else [load_run(p)])]
    if not runs:
        raise RunDirError("no run directories given")
    return runs


# --------------------------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class ResultRow:
    """One (algo, env, variant): final test scores of all its seeds, pooled over its runs."""

    algo: str
    env: str
    metric: str
    n_runs: int
    n_seeds: int
    mean: float
    mean_lo: float
    mean_hi: float
    median: float
    median_lo: float
    median_hi: float
    iqm: float
    iqm_lo: float
    iqm_hi: float
    variant: str = ""
    """The swept values of a sweep trial ("" for plain runs)."""


def _group(runs: Sequence[Run]) -> dict[tuple[str, str, str], list[Run]]:
    """Runs by (algo, env, variant), in first-seen order."""
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.algo, run.env, run.variant), []).append(run)
    return groups


TEST_METRICS = ("test_win_rate", "test_return")
#: Logged tests averaged by the steadier score (`last_tests`). Ours: at the paper's predator-prey and
#: SMAX protocols (a test every 10k of 1M or 2M steps) the last 5 span the final 5% or less of
#: training, and 5 tests of 16 or 32 episodes are 80 or 160 episodes instead of one test's 16 or 32.
DEFAULT_LAST_K = 5


def last_tests(run: Run, k: int = DEFAULT_LAST_K) -> dict[int, float] | None:
    """Per seed, the mean of the last `k` logged greedy tests (fewer where fewer were logged);
    None when the run logged no test (its curves are of the training return)."""
    if k < 1:
        raise ValueError(f"the number of last tests must be at least 1, got {k}")
    if run.curve_metric not in TEST_METRICS or not run.curves:
        return None
    return {seed: float(np.mean(values[-k:])) for seed, (_, values) in run.curves.items()}


def with_last_tests(runs: Sequence[Run], k: int = DEFAULT_LAST_K) -> list[Run] | None:
    """The runs with their scores replaced by `last_tests` (score metric "last-k <metric>"), or
    None when some run has no logged test for some seed."""
    out = []
    for run in runs:
        scores = last_tests(run, k)
        if scores is None or set(scores) != set(run.seeds):
            return None
        out.append(dataclasses.replace(run, scores=scores, score_metric=f"last-{k} {run.curve_metric}"))
    return out


def results_table(runs: Sequence[Run], reps: int = DEFAULT_REPS, confidence: float = DEFAULT_CONFIDENCE,
                  seed: int = 0) -> list[ResultRow]:
    """One row per (algo, env, variant), sorted by env then algo (variants of a sweep in trial
    order), pooling the seeds of all runs of a group. The scores are each run's `scores` (the
    final evaluation; `with_last_tests` gives runs scored by their last logged tests instead).

    Every (run, seed) is one sample (two runs that both trained seed 0 count twice). Point
    estimates: mean, median, IQM (`iqm`, rliable's definition). Intervals: stratified bootstrap
    (`stratified_bootstrap_ci`) with the env as the single stratum; there is no row across envs,
    whose scores (returns) are not on a common scale. Raises ValueError when runs of one pair
    report different score metrics.
    """
    rows = []
    for (algo, env, variant), group in sorted(_group(runs).items(), key=lambda kv: (kv[0][1], kv[0][0])):
        metrics = {r.score_metric for r in group}
        if len(metrics) > 1:
            name = f"{algo} ({variant})" if variant else algo
            raise ValueError(f"runs of {name} on {env} report different scores ({sorted(metrics)}): "
                             + ", ".join(f"{r.path} ({r.score_metric})" for r in group))
        scores = np.array([r.scores[s] for r in group for s in r.seeds], dtype=np.float64)
        point = aggregate(scores)
        stats = {"mean": np.mean, "median": np.median, "iqm": iqm}
        cis = {k: stratified_bootstrap_ci({env: scores}, f, reps=reps, confidence=confidence, seed=seed)
               for k, f in stats.items()}
        rows.append(ResultRow(
            algo=algo, env=env, metric=metrics.pop(), n_runs=len(group), n_seeds=int(scores.size),
            mean=point["mean"], mean_lo=cis["mean"][0], mean_hi=cis["mean"][1],
            median=point["median"], median_lo=cis["median"][0], median_hi=cis["median"][1],
            iqm=point["iqm"], iqm_lo=cis["iqm"][0], iqm_hi=cis["iqm"][1], variant=variant,
        ))
    return rows


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def format_markdown(rows: Sequence[ResultRow], digits: int = 3) -> str:
    """A markdown table: one line per row, each statistic as `value [lo, hi]` (95% CI); a
    `swept` column when any row is a sweep trial."""
    swept = any(r.variant for r in rows)
    head = ["env", "algo"] + (["swept"] if swept else []) + ["score", "seeds", "mean [95% CI]", "median [95% CI]",
                                                             "IQM [95% CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * (len(head) - 4) + ["---:"] * 4) + "|"]
    for r in rows:
        cells = [r.env, r.algo] + ([r.variant] if swept else []) + [r.metric, str(r.n_seeds)]
        for k in ("mean", "median", "iqm"):
            v, lo, hi = getattr(r, k), getattr(r, f"{k}_lo"), getattr(r, f"{k}_hi")
            cells.append(f"{_fmt(v, digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[ResultRow], path: str | Path) -> Path:
    """Write the rows as CSV (full precision), one column per ResultRow field. Returns the path."""
    path = Path(path)
    fields = [f.name for f in dataclasses.fields(ResultRow)]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(dataclasses.asdict(row))
    return path


# --------------------------------------------------------------------------------------------
# Learning curves
# --------------------------------------------------------------------------------------------

def _common_grid(curves: list[tuple[np.ndarray, np.ndarray]], where: str) -> tuple[np.ndarray, np.ndarray]:
    """(grid, values [seeds, grid]) on the env_steps range every seed covers."""
    xs = [x for x, _ in curves]
    if all(x.shape == xs[0].shape and np.array_equal(x, xs[0]) for x in xs):
        grid = xs[0]
    else:
        lo, hi = max(x[0] for x in xs), min(x[-1] for x in xs)
        if lo > hi:
            raise ValueError(f"{where}: the seeds' curves share no env_steps range")
        grid = np.unique(np.linspace(lo, hi, CURVE_GRID_POINTS))
    return grid, np.stack([np.interp(grid, x, y) for x, y in curves])


def line_colors(groups: Mapping[tuple[str, str, str], Any]) -> dict[tuple[str, str], str]:
    """One matplotlib colour ("C0".."C9") per (algo, variant) for the whole figure, in sorted
    order, so that an algorithm keeps its colour from panel to panel (a panel without some
    algorithm does not shift the others')."""
    lines = sorted({(algo, variant) for algo, _, variant in groups})
    return {line: f"C{i % 10}" for i, line in enumerate(lines)}


def plot_curves(runs: Sequence[Run], out_prefix: str | Path, reps: int = DEFAULT_REPS,
                confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> list[Path]:
    """Learning curves: one panel per env, one line per algo (and sweep variant). Writes
    PREFIX.png and PREFIX.pdf.

    A line is the mean over all seeds (of all runs of that algo and env) of the curve,
    interpolated linearly onto a common env_steps grid (the seeds' own steps when they all
    logged the same ones, else 100 points over the range every seed covers: ours); the band is a
    95% percentile bootstrap CI of that mean, resampling seeds (rliable plots curves with such
    bands). Returns the two paths. Raises ValueError when a run has no curve or runs of one pair
    logged different metrics, ImportError when matplotlib is missing.
    """
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from None
    del matplotlib  # the OO API with the Agg canvas: no pyplot, no global backend switch

    runs = list(runs)
    if not runs:
        raise ValueError("no runs to plot")
    for run in runs:
        if not run.curves:
            raise ValueError(f"{run.path}: no learning curve (metrics.jsonl missing or without env_steps rows)")
    groups = _group(runs)
    envs = sorted({env for _, env, _ in groups})
    colors = line_colors(groups)
    ncols = min(len(envs), 3)
    nrows = math.ceil(len(envs) / ncols)
    fig = Figure(figsize=(5.0 * ncols, 3.6 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, env in enumerate(envs):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        lines = sorted((key for key in groups if key[1] == env), key=lambda key: key[0])
        panel_metrics = set()
        for algo, _, variant in lines:
            group = groups[(algo, env, variant)]
            name = f"{algo} {variant}" if variant else algo
            metrics = {r.curve_metric for r in group}
            if len(metrics) > 1:
                raise ValueError(f"runs of {name} on {env} logged different curves ({sorted(metrics)}): "
                                 + ", ".join(f"{r.path} ({r.curve_metric})" for r in group))
            panel_metrics |= metrics
            curves = [c for r in group for c in r.curves.values()]
            grid, values = _common_grid(curves, f"{name} on {env}")
            mean = values.mean(axis=0)
            lo, hi = _bootstrap_mean_ci(values, reps, confidence, seed)
            color = colors[(algo, variant)]
            ax.plot(grid, mean, color=color, label=f"{name} (n={len(curves)})")
            ax.fill_between(grid, lo, hi, color=color, alpha=0.25, linewidth=0)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel(" / ".join(sorted(panel_metrics)).replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    out_prefix = Path(out_prefix)
    if out_prefix.parent != Path(""):
        out_prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = [Path(f"{out_prefix}.png"), Path(f"{out_prefix}.pdf")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    return paths
