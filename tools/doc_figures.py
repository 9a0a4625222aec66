"""The result figures of README.md and docs/, generated from the committed result files.

A doc holds each set of figures between two marker lines,

    <!-- figures:NAME begin -->
    ...
    <!-- figures:NAME end -->

and NAME picks the function of `BLOCKS` below that writes that text from the files under
docs/results/ (each trial's summary.json, metrics.csv, meta.json and config.json, the suite's
results.json). Nothing else in a doc is touched, so the prose around a block must not repeat its
numbers.

    python tools/doc_figures.py --write    # regenerate every block in place
    python tools/doc_figures.py --check    # exit 1 naming each block that differs, at its first such line
    python tools/doc_figures.py --check --root DIR   # the same for another copy of the repository

Trials are read from the folders, not from a report: a trial added to docs/results/*/trials/
appears in every block that covers its experiment on the next `--write`. A trial counts once its
summary.json reaches the env steps its config.json asks for. Confidence intervals are
`wqmix.experiments.results.stratified_bootstrap_ci` with its defaults, as `wqmix reproduce
--report` computes them, so a block and its report agree.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from wqmix.experiments.reproduce import COMPARISON_SET, PAPER_ALGOS
from wqmix.experiments.results import iqm, stratified_bootstrap_ci

DOCS = ("README.md", "docs/results.md", "docs/matrix-games.md", "docs/environments.md", "docs/performance.md")
RESULTS = "docs/results"
MARKER = re.compile(r"^<!-- figures:(?P<name>[a-z0-9-]+) (?P<end>begin|end) -->$")
COMMAND = "`python tools/doc_figures.py --write`"

# Rows in the order of `wqmix reproduce matrix-game`'s grid (the paper's four first); an
# algorithm outside it follows, alphabetically, so that a new one still appears.
ALGO_ORDER = PAPER_ALGOS
PAPER_FOUR = ("ow-qmix", "cw-qmix", "qmix", "vdn")
LAST_TESTS = 5  # "mean of the last k logged tests", the steadier score beside the final evaluation
MINUS = "\u2212"


def algo_key(algo: str) -> tuple[int, str]:
    return (ALGO_ORDER.index(algo), "") if algo in ALGO_ORDER else (len(ALGO_ORDER), algo)


# --------------------------------------------------------------------------------------------
# Formatting: one spelling per kind of number, so that a block reads the same wherever it sits
# --------------------------------------------------------------------------------------------

def num(x: float, decimals: int = 3) -> str:
    """At most `decimals` decimals, trailing zeros dropped but one kept: 38.0, 37.75, 0.906."""
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0")
        text = text + "0" if text.endswith(".") else text
    if text.startswith("-"):
        text = MINUS + text[1:]
    return "0.0" if text == MINUS + "0.0" else text


def fixed(x: float, decimals: int) -> str:
    text = f"{x:.{decimals}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text.replace("-", MINUS)


def seconds(s: float) -> str:
    return f"{round(s):,}"


def hours(s: float) -> str:
    return f"{s / 3600:.1f} h"


def steps(n: float) -> str:
    return f"{int(n):,}"


def kilo_steps(n: float) -> str:
    return f"{round(n / 1000):,}k"


def seed_label(seeds: Sequence[int]) -> str:
    seeds = sorted(seeds)
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}\u2013{seeds[-1]}"
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


def table(head: Sequence[str], rows: Iterable[Sequence[str]], right: int = 0) -> list[str]:
    """A markdown table; the last `right` columns right-aligned."""
    align = ["---"] * (len(head) - right) + ["---:"] * right
    return (["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
            + ["| " + " | ".join(row) + " |" for row in rows])


# --------------------------------------------------------------------------------------------
# Reading an experiment's trials
# --------------------------------------------------------------------------------------------

def read_json(path: Path):
    with open(path) as f:
        return json.load(f)


@dataclass(frozen=True)
class SeedResult:
    """One seed of one finished trial."""

    trial: str
    algo: str
    setting: str
    seed: int
    metric: str
    """`test_win_rate` where the trial reports one (SMAX), else `greedy_return`."""
    score: float
    """The final evaluation's score (summary.json), the headline figure."""
    test_episodes: int | None
    entry: dict
    """The seed's entry of summary.json (`per_seed`)."""
    tests: tuple[tuple[int, float], ...]
    """(env steps, score) of every logged test of the seed (metrics.csv)."""
    last_row: dict
    """The seed's last metrics.csv row."""
    trial_s: float
    """Training time of the whole trial (all its seeds): every call's, when it was resumed."""
    env_steps: int
    """Env steps the trial asked for (config.json); it stops at the first episode end past them."""
    started: str
    """When training began (meta.json, ISO 8601)."""


@dataclass(frozen=True)
class Experiment:
    folder: str
    """Relative to the repository root: docs/results/NAME."""
    results: tuple[SeedResult, ...]
    trials: tuple[str, ...]
    unfinished: tuple[str, ...]
    """Trial directories whose summary.json is short of the env steps asked for."""
    planned: tuple[tuple[str, str], ...]
    """(algo, setting) of every trial sweep.json lists, finished or not."""

    def by_setting(self) -> dict[str, dict[str, list[SeedResult]]]:
        """setting -> algo -> seed results (by seed), algorithms in ALGO_ORDER."""
        out: dict[str, dict[str, list[SeedResult]]] = {}
        for r in sorted(self.results, key=lambda r: (r.setting, algo_key(r.algo), r.seed)):
            out.setdefault(r.setting, {}).setdefault(r.algo, []).append(r)
        return out

    def source(self, what: str = "summary.json, metrics.csv, meta.json") -> str:
        """The sentence naming the files a block rests on: trials, seeds, steps, dates, time."""
        seeds = len(self.results)
        per_trial = {len([r for r in self.results if r.trial == t]) for t in self.trials}
        env_steps = sorted({r.env_steps for r in self.results})  # several where trials differ in length
        step_text = (f"{steps(env_steps[0])} env steps per seed" if len(env_steps) == 1 else
                     f"{steps(env_steps[0])} to {steps(env_steps[-1])} env steps per seed")
        days = sorted({r.started[:10] for r in self.results})
        day_text = f"trained on {days[0]}" if len(days) == 1 else f"trained {days[0]} to {days[-1]}"
        total_s = sum({r.trial: r.trial_s for r in self.results}.values())
        if len(per_trial) == 1:
            k = per_trial.pop()
            seed_text = f"{k} seed{'s' if k > 1 else ''} each"
        else:
            seed_text = f"{seeds} seeds in all"
        trial_text = f"{len(self.trials)} finished trial{'s' if len(self.trials) != 1 else ''}"
        return (f"From `{self.folder}/trials/*/` ({what}): {trial_text}, {seed_text}, "
                f"{step_text}; {day_text}, {hours(total_s)} of training in all "
                f"({seconds(total_s)} s, summed over trials). Generated by {COMMAND}.")


def read_tests(path: Path, seed: int, column: str) -> tuple[list[tuple[int, float]], dict]:
    with open(path, newline="") as f:
        rows = [row for row in csv.DictReader(f) if int(row["seed"]) == seed]
    tests = [(int(row["env_steps"]), float(row[column])) for row in rows if row.get(column) not in (None, "")]
    return tests, (rows[-1] if rows else {})


def setting_of(config: dict) -> str:
    """The grid axis an experiment varies besides the algorithm: predator-prey's punishment,
    SMAX's map; "" where there is none."""
    env = config["env"]
    if env["name"] == "predator-prey":
        return f"p = {env['punishment']:g}".replace("-", MINUS)
    if env["name"] == "smax":
        return env["map"]
    return ""


_loaded: dict[tuple[Path, str], Experiment] = {}
"""Experiments read during one `generate`, which several blocks share; emptied at its start, so
that a result file changed between two calls is read again."""


def load_experiment(root: Path, name: str) -> Experiment:
    if (root, name) not in _loaded:
        _loaded[root, name] = read_experiment(root, name)
    return _loaded[root, name]


def read_experiment(root: Path, name: str) -> Experiment:
    folder = f"{RESULTS}/{name}"
    results, trials, unfinished = [], [], []
    for summary_path in sorted((root / folder / "trials").glob("*/summary.json")):
        trial_dir = summary_path.parent
        summary = read_json(summary_path)
        config = read_json(trial_dir / "config.json")
        if summary["total_env_steps"] < config["train"]["total_env_steps"]:
            unfinished.append(trial_dir.name)
            continue
        meta = read_json(trial_dir / "meta.json")
        trial_s = summary.get("total_run_s", summary["run_s"])
        wins = all("test_win_rate" in entry for entry in summary["per_seed"])
        metric = "test_win_rate" if wins else "greedy_return"
        trials.append(trial_dir.name)
        for entry in summary["per_seed"]:
            tests, last_row = read_tests(trial_dir / "metrics.csv", entry["seed"],
                                         "test_win_rate" if wins else "test_return")
            results.append(SeedResult(
                trial=trial_dir.name, algo=summary["algo"], setting=setting_of(config), seed=entry["seed"],
                metric=metric, score=float(entry[metric]), test_episodes=entry.get("test_episodes"), entry=entry,
                tests=tuple(tests), last_row=last_row, trial_s=float(trial_s),
                env_steps=int(config["train"]["total_env_steps"]), started=meta["start_time"]))
    planned = []
    sweep = root / folder / "sweep.json"
    if sweep.exists():
        for trial in read_json(sweep)["trials"]:
            planned.append((trial["params"]["algo.name"], setting_of(trial["config"])))
    if not results:
        raise SystemExit(f"doc_figures: no finished trial under {folder}/trials")
    return Experiment(folder, tuple(results), tuple(trials), tuple(unfinished), tuple(planned))


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------

def mean_ci(scores: Sequence[float], stat: Callable = np.mean) -> tuple[float, float, float]:
    """The statistic and its 95% stratified-bootstrap CI, as `wqmix reproduce --report` gives them
    (one stratum, the seeds in seed order, the bootstrap's default resamples and seed)."""
    scores = np.asarray(scores, dtype=np.float64)
    value = float(stat(scores))
    if np.all(scores == scores[0]):
        return value, value, value  # every resample is the same scores: the bootstrap would say so, slowly
    lo, hi = stratified_bootstrap_ci({"": scores}, stat)
    return value, lo, hi


def ci_text(scores: Sequence[float], stat: Callable = np.mean, digits: int = 3) -> str:
    """"0.854 [0.781, 0.906]": `mean_ci`'s statistic and CI, as every table writes them."""
    value, lo, hi = mean_ci(scores, stat)
    return f"{fixed(value, digits)} [{fixed(lo, digits)}, {fixed(hi, digits)}]"


def last_tests_mean(r: SeedResult) -> float | None:
    values = [v for _, v in r.tests[-LAST_TESTS:]]
    return float(np.mean(values)) if values else None


def best_test(r: SeedResult) -> tuple[float, int] | None:
    """The best logged test score and the env step it was first reached at."""
    if not r.tests:
        return None
    best = max(v for _, v in r.tests)
    return best, next(s for s, v in r.tests if v == best)


def score_name(results: Sequence[SeedResult]) -> str:
    episodes = sorted({r.test_episodes for r in results if r.test_episodes})
    count = "/".join(map(str, episodes))
    if results[0].metric == "test_win_rate":
        return f"final test win rate over {count} greedy battles" if count else "final test win rate"
    return f"final greedy test return over {count} episodes" if count else "final greedy test return"


# --------------------------------------------------------------------------------------------
# Blocks of the trial experiments (predator-prey, SMAX)
# --------------------------------------------------------------------------------------------

def per_seed(values: Iterable[str]) -> str:
    return ", ".join(values)


def trial_table(exp: Experiment, extra: Sequence[tuple[str, Callable[[SeedResult], str]]] = ()) -> list[str]:
    """One table per setting, one row per algorithm: the final score per seed, its mean with a
    CI, the steadier last-tests mean, the best logged test, the training time, and `extra`."""
    lines: list[str] = []
    win = exp.results[0].metric == "test_win_rate"
    digits = 3 if win else 2
    for setting, algos in exp.by_setting().items():
        if setting:
            lines += [f"**{setting}**", ""]
        head = ["algorithm", "seeds", score_name([r for rs in algos.values() for r in rs]),
                "mean [95% CI]", f"mean of the last {LAST_TESTS} logged tests",
                "best logged test (first at)"] + [h for h, _ in extra] + ["training time, s"]
        rows = []
        for algo, rs in algos.items():
            lasts = [last_tests_mean(r) for r in rs]
            bests = [best_test(r) for r in rs]
            rows.append([
                algo, str(len(rs)), per_seed(num(r.score) for r in rs),
                ci_text([r.score for r in rs], digits=digits),
                per_seed("—" if v is None else num(v) for v in lasts),
                per_seed("—" if b is None else f"{num(b[0])} ({kilo_steps(b[1])})" for b in bests),
                *[per_seed(f(r) for r in rs) for _, f in extra],
                " / ".join(seconds(r.trial_s) for r in rs),
            ])
        lines += table(head, rows) + [""]
    return lines


def unfinished_line(exp: Experiment) -> list[str]:
    done = {(r.algo, r.setting) for r in exp.results}
    missing = sorted({a for a, s in exp.planned if (a, s) not in done}, key=algo_key)
    lines = [f"In sweep.json without a finished trial yet: {', '.join(missing)}.", ""] if missing else []
    if exp.unfinished:
        lines += [f"Trials short of their env steps, left out: {', '.join(exp.unfinished)}.", ""]
    return lines


def final_train_return(r: SeedResult) -> str:
    value = r.last_row.get("train_return")
    return "—" if value in (None, "") else num(float(value), 1)


def final_q_taken(r: SeedResult) -> str:
    value = r.last_row.get("q_taken_mean")
    return "—" if value in (None, "") else num(float(value), 1)


def experiment_block(name: str, extra=()) -> Callable[[Path], str]:
    def block(root: Path) -> str:
        exp = load_experiment(root, name)
        lines = [exp.source(), ""] + trial_table(exp, extra) + unfinished_line(exp)
        return "\n".join(lines).rstrip("\n")
    return block


TRAIN_RETURN = ("train return, last logged chunk", final_train_return)
Q_TAKEN = ("mean Q of the taken actions, last logged chunk", final_q_taken)


# --------------------------------------------------------------------------------------------
# The matrix game (docs/results/matrix-game: 5 seeds per trial)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MatrixAlgo:
    algo: str
    results: list[SeedResult]
    payoff: np.ndarray

    @property
    def optimal(self) -> int:
        return sum(r.score == self.payoff.max() for r in self.results)

    def cell(self, key: str, at: tuple[int, int]) -> str | None:
        values = [r.entry.get(key) for r in self.results]
        if any(v is None for v in values):
            return None
        return per_seed(fixed(float(np.asarray(v)[at]), 2) for v in values)

    def central_error(self) -> float | None:
        tables = [r.entry.get("q_central") for r in self.results]
        if any(t is None for t in tables):
            return None
        return max(float(np.abs(np.asarray(t) - self.payoff).max()) for t in tables)


def matrix_game(root: Path) -> tuple[Experiment, list[MatrixAlgo]]:
    exp = load_experiment(root, "matrix-game")
    payoff = np.asarray(read_json(root / exp.folder / "trials" / exp.trials[0] / "config.json")["env"]["payoff"])
    algos = [MatrixAlgo(algo, rs, payoff) for algo, rs in exp.by_setting()[""].items()]
    return exp, algos


def joint(action: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, action)) + ")"


def block_matrix_game(root: Path) -> str:
    exp, algos = matrix_game(root)
    optimum = joint(np.unravel_index(int(np.argmax(algos[0].payoff)), algos[0].payoff.shape))
    seeds = seed_label([r.seed for r in algos[0].results])
    rows = []
    for a in algos:
        error = a.central_error()
        rows.append([a.algo, f"{a.optimal}/{len(a.results)}",
                     " ".join(joint(r.entry["greedy_joint_action"]) for r in a.results),
                     a.cell("q_tot", (0, 0)) or "—", a.cell("q_central", (0, 0)) or "—",
                     "—" if error is None else fixed(error, 2)])
    lines = [exp.source("summary.json, meta.json"), "",
             *table(["algorithm", f"greedy joint action {optimum}", f"greedy joint action, {seeds}",
                     f"Q_tot{optimum}, {seeds}", f"Q̂\\*{optimum}, {seeds}",
                     "largest \\|Q̂\\* − payoff\\|, any joint action and seed"], rows),
             "", "Final greedy test return across the seeds of the paper's four algorithms (95% "
                 "stratified-bootstrap CIs):", ""]
    ci_rows = []
    by_algo = {a.algo: a for a in algos}
    for algo in (a for a in PAPER_FOUR if a in by_algo):
        scores = [r.score for r in by_algo[algo].results]
        ci_rows.append([algo, str(len(scores)), *(ci_text(scores, stat) for stat in (np.mean, np.median, iqm))])
    lines += table(["algorithm", "seeds", "mean [95% CI]", "median [95% CI]", "IQM [95% CI]"], ci_rows, right=4)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The suite of non-monotonic games (docs/results/matrix-games/results.json)
# --------------------------------------------------------------------------------------------

def suite(root: Path) -> tuple[dict, str]:
    path = f"{RESULTS}/matrix-games/results.json"
    return read_json(root / path), path


def suite_share(entry: dict, games: Iterable[str], num_seeds: int) -> float:
    games = list(games)
    return sum(entry["optimal_by_game"][g] for g in games) / (num_seeds * len(games))


def block_matrix_games(root: Path) -> str:
    data, path = suite(root)
    games = list(data["games"])
    randoms = [g for g in games if g.startswith("random-")]
    hand = [g for g in games if g not in randoms]
    seeds = len(data["seeds"])
    rows = []
    for algo in sorted(data["algorithms"], key=algo_key):
        entry = data["algorithms"][algo]
        lo, hi = entry["ci95"]
        rows.append([algo, f"{entry['optimal_fraction']:.1%}", f"[{lo:.1%}, {hi:.1%}]",
                     f"{suite_share(entry, hand, seeds):.1%}", f"{suite_share(entry, randoms, seeds):.1%}",
                     seconds(entry["wall_s"])])
    total = sum(e["wall_s"] for e in data["algorithms"].values())
    lines = [f"From `{path}`: {len(data['algorithms'])} algorithms × {len(games)} games ({len(hand)} "
             f"hand-crafted, {len(randoms)} random) × {seeds} seeds, {steps(data['total_env_steps'])} "
             f"episodes per run; {seconds(total)} s of training in all, summed over the algorithms. "
             f"Generated by {COMMAND}.", "",
             *table(["algorithm", f"% optimal ({len(games)} games × {seeds} seeds)", "95% CI", "hand-crafted",
                     "random", "training time, s"], rows)]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# README summaries: the comparison set's first results, and the headline of each reproduction
# --------------------------------------------------------------------------------------------

def listing(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def seed_scores(rs: Sequence[SeedResult]) -> str:
    return per_seed(num(r.score) for r in rs)


def trial_summary(exp: Experiment, algos: Sequence[str] | None = None) -> list[str]:
    """Per setting, "algo a, b, c; algo a, b, c" of the final scores (of `algos` only, when given)."""
    parts = []
    for setting, by_algo in exp.by_setting().items():
        names = [a for a in by_algo if algos is None or a in algos]
        text = "; ".join(f"{a} {seed_scores(by_algo[a])}" for a in names)
        parts.append((setting, text))
    return [f"{setting}: {text}" if setting else text for setting, text in parts if text]


def block_comparison_set(root: Path) -> str:
    _, algos = matrix_game(root)
    found = [f"{a.algo} {a.optimal}/{len(a.results)}" for a in algos if a.algo in COMPARISON_SET]
    data, path = suite(root)
    shares = [f"{a} {data['algorithms'][a]['optimal_fraction']:.1%}"
              for a in sorted(data["algorithms"], key=algo_key) if a in COMPARISON_SET]
    pp = load_experiment(root, "predator-prey")
    done = {r.algo for r in pp.results}
    waiting = sorted({a for a, _ in pp.planned if a in COMPARISON_SET and a not in done}, key=algo_key)
    pp_steps = sorted({r.env_steps for r in pp.results if r.algo in COMPARISON_SET})
    lines = [
        f"- The paper's matrix game, greedy joint action optimal in k of {len(algos[0].results)} seeds: "
        f"{listing(found)} "
        f"([report](docs/results/matrix-game/report.md)).",
        f"- The suite of {len(data['games'])} non-monotonic games, % of runs optimal: {listing(shares)} "
        f"([docs/matrix-games.md](docs/matrix-games.md); `{path}`).",
    ]
    pp_text = "; ".join(trial_summary(pp, COMPARISON_SET))
    if pp_text:
        pp_text = (f"{score_name([r for r in pp.results if r.algo in COMPARISON_SET])} after "
                   f"{steps(pp_steps[0])} env steps, per seed, {pp_text}")
    if waiting:
        pp_text += ("; " if pp_text else "") + f"no finished trial yet of {listing(waiting)}"
    if pp_text:
        lines.append(f"- Predator-prey, {pp_text} "
                     f"([docs/results/predator-prey/report.md](docs/results/predator-prey/report.md)).")
    lines.append(f"\nGenerated by {COMMAND} from `docs/results/matrix-game/trials/*/summary.json`, `{path}` "
                 f"and `docs/results/predator-prey/trials/*/summary.json`.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# SMAX at JaxMARL's schedule, JaxMARL's own QMIX beside ours (docs/results/smax-jaxmarl)
# --------------------------------------------------------------------------------------------

SEED_SMAC = {"2s3z": ("95%", "97%"), "3s5z": ("90%", "95%")}
"""The seed document's SMAC table (section 7, "SMAC Benchmark Comparison"): QMIX and WQMIX win
rates of the maps SMAX also has. Quoted, not measured here; SMAC is another simulator."""
SMAX_LACKS = ("MMM", "corridor", "1c3s5z")
"""The seed document's SMAC maps without a faithful SMAX counterpart (docs/results.md says why)."""
BESIDE = "jaxmarl-qmix"
"""JaxMARL's own QMIX, one folder per map (`benchmarks/jaxmarl_qmix_smax.py`)."""


def read_beside(root: Path, folder: str) -> list[SeedResult]:
    """The seeds of JaxMARL's own QMIX under `folder/jaxmarl-qmix/MAP/`: its summary.json gives the
    final test and each seed's training time (seeds run one after another), metrics.csv the tests."""
    results = []
    for summary_path in sorted((root / folder / BESIDE).glob("*/summary.json")):
        summary = read_json(summary_path)
        for entry, run_s in zip(summary["per_seed"], summary["run_s"]):
            tests, last_row = read_tests(summary_path.parent / "metrics.csv", entry["seed"], "test_win_rate")
            results.append(SeedResult(
                trial=f"{BESIDE}-{summary['map']}-seed{entry['seed']}", algo=BESIDE, setting=summary["map"],
                seed=entry["seed"], metric="test_win_rate", score=float(entry["test_win_rate"]), test_episodes=None,
                entry=entry, tests=tuple(tests), last_row=last_row, trial_s=float(run_s),
                env_steps=int(entry["env_steps"]), started=""))
    return results


SMAX_JAXMARL_MAPS = ("3m", "2s3z", "3s5z")
"""The maps of `wqmix reproduce smax --protocol jaxmarl`'s grid, in the table's order."""


def smax_jaxmarl(root: Path) -> tuple[Experiment, list[SeedResult], dict[str, dict[str, list[SeedResult]]]]:
    """The grid at JaxMARL's schedule, JaxMARL's own QMIX (`read_beside`), and both together by
    map (in `SMAX_JAXMARL_MAPS`'s order) and algorithm."""
    exp = load_experiment(root, "smax-jaxmarl")
    beside = read_beside(root, exp.folder)
    by_setting = replace(exp, results=exp.results + tuple(beside)).by_setting()
    return exp, beside, {m: by_setting[m] for m in sorted(by_setting, key=SMAX_JAXMARL_MAPS.index)}


def block_smax_jaxmarl(root: Path) -> str:
    exp, beside, by_setting = smax_jaxmarl(root)
    head = ["map", "algorithm", "seeds", "final test win rate, per seed", "mean [95% CI]",
            f"mean of the last {LAST_TESTS} logged tests [95% CI]", "training time per trial, min",
            "seed document's SMAC figure (not comparable)"]
    rows = []
    for smax_map, by_algo in by_setting.items():
        for algo, rs in by_algo.items():
            smac = SEED_SMAC.get(smax_map)
            quoted = ("—" if smac is None else
                      f"QMIX {smac[0]}" if algo in ("qmix", BESIDE) else f"WQMIX {smac[1]}")
            rows.append([smax_map, algo, str(len(rs)), per_seed(num(r.score) for r in rs),
                         ci_text([r.score for r in rs]), ci_text([last_tests_mean(r) for r in rs]),
                         " / ".join(f"{r.trial_s / 60:.0f}" for r in rs), quoted])
    ours_steps = sorted({r.env_steps for r in exp.results})
    their_steps = sorted({r.env_steps for r in beside})
    lines = [exp.source(), "",
             f"JaxMARL's QMIX from `{exp.folder}/{BESIDE}/*/` (summary.json, metrics.csv): "
             f"{len(beside)} seeds, {', '.join(steps(n) for n in their_steps) or '—'} env steps per seed "
             f"(its schedule stops at a whole number of rollouts; ours at the first episode end past "
             f"{steps(ours_steps[0])}); its tests are 512 envs x 128 steps, ours 32 battles.", ""]
    lines += table(head, rows) + [""]
    lines += [f"SMAX has no faithful counterpart of the seed document's {listing(SMAX_LACKS)}.", ""]
    return "\n".join(lines + unfinished_line(exp)).rstrip("\n")


def mean_text(rs: Sequence[SeedResult]) -> str:
    """"0.854 [0.781, 0.906] (3 seeds)": the mean final score with its 95% CI."""
    return f"{ci_text([r.score for r in rs])} ({len(rs)} seed{'s' if len(rs) != 1 else ''})"


HEADLINE_SMAX = (("smax-300k-smac-state", "SMAX 3m, the SMAC-scaled state (the default)"),
                 ("smax-300k-raw-state", "SMAX 3m, SMAX's raw world state"),
                 ("smax-2s3z-1m", "SMAX 2s3z"))


def block_headline(root: Path) -> str:
    exp, algos = matrix_game(root)
    found = [f"{a.algo} {a.optimal}/{len(a.results)}" for a in algos]
    mg_steps = exp.results[0].env_steps
    lines = [f"- **Matrix game** ({steps(mg_steps)} episodes, {len(algos[0].results)} seeds per algorithm): "
             f"greedy joint action optimal in {listing(found)} ([report](docs/results/matrix-game/report.md))."]
    pp = load_experiment(root, "predator-prey")
    pp_steps = min(r.env_steps for r in pp.results)
    trial_s = sum({r.trial: r.trial_s for r in pp.results}.values())
    lines.append(f"- **Predator-prey** ({steps(pp_steps)} env steps, {score_name(pp.results)}), "
                 f"{'; '.join(trial_summary(pp))} ({len(pp.trials)} trials, {hours(trial_s)} of training; "
                 f"[report](docs/results/predator-prey/report.md)).")
    for name, title in HEADLINE_SMAX:
        smax = load_experiment(root, name)
        smax_steps = min(r.env_steps for r in smax.results)
        summary = "; ".join(text.split(": ", 1)[-1] for text in trial_summary(smax))
        lines.append(f"- **{title}** ({steps(smax_steps)} env steps, {score_name(smax.results)}): {summary} "
                     f"([report](docs/results/{name}/report.md)).")
    jx, _, jx_settings = smax_jaxmarl(root)
    jx_text = "; ".join(f"{smax_map}: " + ", ".join(f"{a} {mean_text(rs)}" for a, rs in by_algo.items())
                        for smax_map, by_algo in jx_settings.items())
    lines.append(f"- **SMAX at JaxMARL's schedule, beside JaxMARL's own QMIX** ({steps(min(r.env_steps for r in jx.results))} "
                 f"env steps, final test win rate, mean [95% CI] over seeds): {jx_text} "
                 f"([report](docs/results/smax-jaxmarl/report.md)).")
    lbf = load_experiment(root, "lbf-epymarl")
    lbf_text = "; ".join(f"{a} {seed_scores(rs)}" for a, rs in next(iter(lbf.by_setting().values())).items())
    lines.append(f"- **Level-based foraging (Jumanji) under EPyMARL's protocol** "
                 f"({steps(min(r.env_steps for r in lbf.results))} env steps, {score_name(lbf.results)}): "
                 f"{lbf_text} ([report](docs/results/lbf-epymarl/report.md)).")
    lines.append(f"\nGenerated by {COMMAND} from each folder's `trials/*/summary.json` "
                 f"(details, with CIs and training times: [docs/results.md](docs/results.md)).")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Speed of the bring-your-env workloads (docs/results/bench-envs.json, `wqmix bench --json`)
# --------------------------------------------------------------------------------------------

BENCH_ENVS_LABELS = {
    "jaxmarl-overcooked": "Overcooked, 2 agents, 8 envs",
    "jumanji-lbf": "LBF 8\u00d78, 2 agents, 8 envs",
    "gym-lbf": "lbforaging, host, 8 envs",
}


def percent(share: float) -> str:
    return f"{share:.0%}".replace("%", " %")


def block_bench_envs(root: Path) -> str:
    path = f"{RESULTS}/bench-envs.json"
    bench = read_json(root / path)
    rows, floors, networks = [], [], []
    state_only = any("raw_state_only_env_steps_per_s" in r for r in bench["results"])
    for r in bench["results"]:
        label = BENCH_ENVS_LABELS.get(r["workload"], r["description"])
        training = f"{r['env_steps_per_s']['median']:,.0f}"
        floor = r.get("env_and_network_env_steps_per_s")
        if floor is None:  # a host env: training beside the env alone too
            training += f" ({percent(r['training_vs_raw'])})"
        else:
            floors.append(f"`{r['workload']}` {percent(r['acting_env_steps_per_s'] / floor)}")
        if "acting_network_mflop_per_env_step" in r:
            mflop = r["acting_network_mflop_per_env_step"]
            networks.append(f"`{r['workload']}` {mflop:.3f} MFLOP per env step, "
                            f"{r['acting_env_steps_per_s'] * mflop / 1e3:.1f} GFLOP/s when acting")
        row = [f"`{r['workload']}` ({label})", f"{r['raw_env_steps_per_s']:,.0f}"]
        if state_only:
            only = r.get("raw_state_only_env_steps_per_s")
            row.append(f"{only:,.0f}" if only is not None else "")
        rows.append(row + [f"{r['acting_env_steps_per_s']:,.0f} ({percent(r['acting_vs_raw'])})",
                           f"{floor:,.0f}" if floor is not None else "", training])
    repeats = sorted({r["repeats"] for r in bench["results"]})
    lines = [f"From `{path}`: env steps/s, medians of {'/'.join(map(str, repeats))} repeats; "
             f"in brackets, the share of the env alone. Generated by {COMMAND}.", ""]
    header = ["workload", "env alone"] + (["env alone, state only"] if state_only else [])
    header += ["acting", "env + agent network, plain scan", "training"]
    lines += table(header, rows, right=len(header) - 1)
    if floors:
        lines += ["", f"Acting as a share of the env with the agent network in a plain scan: {', '.join(floors)}."]
    if networks:
        lines += ["", f"The agent network's matrix products: {'; '.join(networks)} (the machine's matrix-product "
                      f"peak: {bench['matmul_gflops']:.1f} GFLOP/s)."]
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[Path], str]] = {
    "bench-envs": block_bench_envs,
    "comparison-set": block_comparison_set,
    "matrix-game": block_matrix_game,
    "matrix-games": block_matrix_games,
    "headline": block_headline,
    "predator-prey": experiment_block("predator-prey", extra=(TRAIN_RETURN,)),
    "smax-300k-smac-state": experiment_block("smax-300k-smac-state"),
    "smax-300k-raw-state": experiment_block("smax-300k-raw-state", extra=(TRAIN_RETURN, Q_TAKEN)),
    "smax-2s3z-1m": experiment_block("smax-2s3z-1m"),
    "lbf-epymarl": experiment_block("lbf-epymarl", extra=(TRAIN_RETURN,)),
    "smax-jaxmarl": block_smax_jaxmarl,
}


# --------------------------------------------------------------------------------------------
# Blocks in the docs
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    doc: str
    name: str
    begin: int
    """Index of the begin marker line."""
    end: int
    """Index of the end marker line."""


class DocError(ValueError):
    """A doc whose markers do not pair up or name no known block."""


def find_blocks(doc: str, lines: Sequence[str]) -> list[Block]:
    blocks, open_block = [], None
    for i, line in enumerate(lines):
        match = MARKER.match(line.strip())
        if not match:
            continue
        name, kind = match["name"], match["end"]
        if name not in BLOCKS:
            raise DocError(f"{doc}:{i + 1}: figures:{name} is no block of tools/doc_figures.py "
                           f"(known: {', '.join(BLOCKS)})")
        if kind == "begin":
            if open_block is not None:
                raise DocError(f"{doc}:{i + 1}: figures:{name} begins inside figures:{open_block[0]}")
            open_block = (name, i)
        else:
            if open_block is None or open_block[0] != name:
                raise DocError(f"{doc}:{i + 1}: figures:{name} ends without its begin")
            blocks.append(Block(doc, name, open_block[1], i))
            open_block = None
    if open_block is not None:
        raise DocError(f"{doc}:{open_block[1] + 1}: figures:{open_block[0]} has no end marker")
    return blocks


def block_lines(text: str) -> list[str]:
    """The lines between the markers: the generated text with a blank line either side, so that
    markdown tables and lists start and end as blocks of their own."""
    return [""] + text.split("\n") + [""]


def generate(root: Path, names: Iterable[str]) -> dict[str, list[str]]:
    _loaded.clear()
    return {name: block_lines(BLOCKS[name](root)) for name in dict.fromkeys(names)}


def read_docs(root: Path) -> dict[str, list[str]]:
    return {doc: (root / doc).read_text().split("\n") for doc in DOCS if (root / doc).exists()}


def check(root: Path) -> list[str]:
    """One message per block whose text differs from what the files give (the first differing
    line of each), and per block of `BLOCKS` that no doc holds."""
    docs = read_docs(root)
    blocks = [b for doc, lines in docs.items() for b in find_blocks(doc, lines)]
    expected = generate(root, (b.name for b in blocks))
    problems = []
    for b in blocks:
        have = docs[b.doc][b.begin + 1:b.end]
        want = expected[b.name]
        for i in range(max(len(have), len(want))):
            got = have[i] if i < len(have) else "(block ends)"
            wanted = want[i] if i < len(want) else "(block ends)"
            if got != wanted:
                problems.append(f"{b.doc}:{b.begin + 2 + i}: block figures:{b.name} differs from its files at "
                                f"line {i + 1} of the block\n  doc:   {got}\n  files: {wanted}")
                break
    for name in BLOCKS:
        if not any(b.name == name for b in blocks):
            problems.append(f"block figures:{name} is in no doc ({', '.join(DOCS)})")
    return problems


def write(root: Path) -> list[str]:
    """Regenerate every block in place; the docs changed."""
    docs = read_docs(root)
    blocks = {doc: find_blocks(doc, lines) for doc, lines in docs.items()}
    expected = generate(root, (b.name for bs in blocks.values() for b in bs))
    changed = []
    for doc, lines in docs.items():
        out, at = [], 0
        for b in blocks[doc]:
            out += lines[at:b.begin + 1] + expected[b.name]
            at = b.end
        out += lines[at:]
        if out != lines:
            (root / doc).write_text("\n".join(out))
            changed.append(doc)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate every figures block in place")
    mode.add_argument("--check", action="store_true", help="exit 1 when a block differs from its files")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the repository root (default: this script's checkout)")
    args = parser.parse_args(argv)
    try:
        if args.write:
            changed = write(args.root)
            print("doc_figures: " + (f"rewrote {', '.join(changed)}" if changed else "every block is current"))
            return 0
        problems = check(args.root)
    except DocError as error:
        print(f"doc_figures: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"doc_figures: {problem}", file=sys.stderr)
    if problems:
        print(f"doc_figures: {len(problems)} block(s) disagree with docs/results/; "
              f"run {COMMAND} after changing a result file", file=sys.stderr)
        return 1
    print("doc_figures: every figures block matches its files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
