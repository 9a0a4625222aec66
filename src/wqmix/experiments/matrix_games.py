"""A suite of non-monotonic matrix games: "% optimal" per algorithm, as the projector write-up
reports it ("hand-crafted games violating monotonicity: QMIX 60% optimal, WQMIX 98% optimal").

A game here is a two-agent, one-step payoff matrix. It is **non-monotonic** when the joint
action that independent, uniformly exploring agents settle on is not optimal: agent 0 prefers
the row with the best mean payoff against a uniform partner, agent 1 the column, and that
joint action pays less than the best one (relative overgeneralisation; the paper's Table 1a
game is the example: row 0 holds the 8 but has the worst mean, -5.3). Any additive (VDN-like)
fit under uniform data has exactly these per-agent preferences, so such a game needs more than
a monotonic projection of uniform data to be solved.

A run is optimal when its per-agent greedy joint action (what decentralised execution plays)
earns the game's best payoff. Every algorithm trains on every game x seed with the paper's
matrix-game protocol (`matrix_game_paper`: epsilon = 1 throughout, official learning settings)
for `SUITE_EPISODES` one-step episodes, all games and seeds of one algorithm vmapped in one
compiled call.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wqmix import config as cfg
from wqmix.envs.matrix_game import MatrixGame
from wqmix.envs.payoffs import PAPER_PAYOFF
from wqmix.experiments.results import stratified_bootstrap_ci
from wqmix.run_dir import write_text_atomic

HAND_CRAFTED: dict[str, tuple[tuple[float, ...], ...]] = {
    "paper": PAPER_PAYOFF,
    # Claus & Boutilier (1998), the climbing game: the optimum (0, 0) sits beside a -30.
    "climbing": ((11.0, -30.0, 0.0), (-30.0, 7.0, 6.0), (0.0, 0.0, 5.0)),
    # Claus & Boutilier (1998), the penalty game with k = -100: two optima, each beside a -100.
    "penalty": ((10.0, 0.0, -100.0), (0.0, 2.0, 0.0), (-100.0, 0.0, 10.0)),
    # The paper's game with a second, lower peak that uniform data favour.
    "paper-two-peaks": ((8.0, -12.0, -12.0), (-12.0, 6.0, 0.0), (-12.0, 0.0, 0.0)),
    # Two optimal joint actions whose miscoordination costs -10, and a safe 4.
    "coordination-trap": ((6.0, -10.0, 0.0), (-10.0, 6.0, 0.0), (0.0, 0.0, 4.0)),
}
"""Hand-crafted 3 x 3 non-monotonic games (each passes `is_non_monotonic`). The write-up's own 2 x 2
example, [[8, -12], [-12, 0]], is not among them: its row and column means already point to the
optimum (0, 0), so it is monotonic in this sense (see `is_non_monotonic`)."""

WRITE_UP_CLAIM = {"qmix": 0.60, "wqmix": 0.98}
"""The write-up's figures (section 7, "Matrix Games"), fraction of runs optimal."""

SUITE_EPISODES = 2_000
"""Episodes per run. Ours: the paper's protocol runs 10k (official `t_max`), but OW/CW-QMIX's
central mixer costs about 1 ms per update on 2 CPU cores, so 25 games x 5 seeds x 10k episodes
would take about 45 minutes for those two alone; at 2k (about 2,000 updates, 10 target copies)
the whole suite takes about 20. `wqmix reproduce matrix-games --env-steps 10000` (the alias
`wqmix experiment matrix-games --episodes 10000`) runs the paper's length."""

SUITE_ALGORITHMS: tuple[str, ...] = (
    "qmix", "vdn", "iql", "ow-qmix", "cw-qmix", "ow-qmix-no-central", "cw-qmix-no-central",
    "projector-qmix", "projector-qmix-text", "projector-qmix-sa",
    "qplex", "qtran", "qatten", "ow-qmix-atten", "cw-qmix-atten",
)
"""Every registered algorithm: the paper's, its ablation (OW, and its CW twin), the write-up's three
variants, and the comparison set (QPLEX, QTRAN, Qatten, OW-/CW-QMIX with the attention central mixer)."""


def uniform_greedy_joint_action(payoff: np.ndarray) -> tuple[int, int]:
    """The joint action of agents that each prefer their action of best mean payoff against a
    uniformly random partner (ties: the lowest index)."""
    payoff = np.asarray(payoff, np.float64)
    return int(np.argmax(payoff.mean(axis=1))), int(np.argmax(payoff.mean(axis=0)))


def is_non_monotonic(payoff: np.ndarray) -> bool:
    """True when `uniform_greedy_joint_action` does not earn the best payoff."""
    payoff = np.asarray(payoff, np.float64)
    return bool(payoff[uniform_greedy_joint_action(payoff)] < payoff.max())


def random_games(count: int, seed: int, size: int = 3, low: int = -12, high: int = 12) -> np.ndarray:
    """`count` random non-monotonic games (count, size, size): integer payoffs uniform in
    [low, high], drawn from `seed` until `count` pass `is_non_monotonic` and have one optimal
    joint action that beats the runner-up by at least 1."""
    rng = np.random.default_rng(seed)
    games: list[np.ndarray] = []
    while len(games) < count:
        payoff = rng.integers(low, high + 1, size=(size, size)).astype(np.float32)
        ranked = np.sort(payoff.ravel())
        if is_non_monotonic(payoff) and ranked[-1] - ranked[-2] >= 1:
            games.append(payoff)
    return np.stack(games) if games else np.zeros((0, size, size), np.float32)


def suite_config(algo: str, total_env_steps: int | None = None) -> cfg.Config:
    """The paper's matrix-game protocol with algorithm `algo` (and its preset optimiser), for
    `total_env_steps` episodes (default `SUITE_EPISODES`)."""
    config = cfg.with_algo(cfg.matrix_game_paper(), algo)
    steps = SUITE_EPISODES if total_env_steps is None else total_env_steps
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, total_env_steps=steps))
    return cfg.validate(dataclasses.replace(config, log=dataclasses.replace(config.log, quiet=True)))


def make_suite_train(config: cfg.Config) -> Callable[[jax.Array, jax.Array], dict[str, jax.Array]]:
    """train(payoffs (G, n, n), keys (S,)) -> per (game, seed): the greedy joint action (G, S, 2)
    and Q_tot of every joint action (G, S, n, n), one compiled call for all G x S runs.

    Episodes last one step, so every run takes exactly `total_env_steps / num_envs`
    iterations: a fixed-length loop, which vmaps without selecting between old and new states."""
    from wqmix.evaluate import first_step_utilities, joint_tables
    from wqmix.train import Trainer

    iterations = -(-config.train.total_env_steps // config.train.num_envs)

    def one_run(payoff: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
        trainer = Trainer(config, MatrixGame(payoff, config.env.state_dim))
        state = jax.lax.fori_loop(0, iterations, lambda _, s: trainer.iteration(s)[0], trainer.init(key))
        utilities = first_step_utilities(trainer, state.learner.params, "agent")  # (2, n)
        if config.algo.mixer == "none":  # IQL has no Q_tot: its table is Q_0(a0) + Q_1(a1)
            q_tot = utilities[0][:, None] + utilities[1][None, :]
        else:
            q_tot = joint_tables(trainer, state.learner)[1]
        return {"greedy": jnp.argmax(utilities, axis=-1), "q_tot": q_tot}

    return jax.jit(jax.vmap(jax.vmap(one_run, in_axes=(None, 0)), in_axes=(0, None)))


def optimal(payoffs: np.ndarray, greedy: np.ndarray) -> np.ndarray:
    """(G, S) bool: the greedy joint action (G, S, 2) earns the game's best payoff."""
    g = np.arange(payoffs.shape[0])[:, None]
    earned = payoffs[g, greedy[..., 0], greedy[..., 1]]
    return earned >= payoffs.reshape(payoffs.shape[0], -1).max(axis=1)[:, None] - 1e-6


def done_algorithms(out: Path, num_random: int = 20, num_seeds: int = 5, seed: int = 0,
                    total_env_steps: int | None = None) -> dict[str, dict[str, Any]]:
    """The algorithms `out/results.json` holds for these games, seeds and each one's current
    config, with their results: those `run_suite(..., resume=True)` keeps."""
    path = Path(out) / "results.json"
    if not path.is_file():
        return {}
    previous = json.loads(path.read_text())
    games = np.concatenate([np.asarray(list(HAND_CRAFTED.values()), np.float32),
                            random_games(num_random, seed)]).astype(np.float32)
    if (previous.get("seeds") != [seed + s for s in range(num_seeds)]
            or previous.get("total_env_steps") != (SUITE_EPISODES if total_env_steps is None else total_env_steps)
            or list(previous.get("games", {}).values()) != games.tolist()):
        return {}
    return {algo: entry for algo, entry in previous.get("algorithms", {}).items()
            if cfg.config_difference(entry.get("config"),
                                     json.loads(json.dumps(cfg.to_dict(suite_config(algo, total_env_steps))))) is None}


def run_suite(out: Path, algos: Sequence[str] = SUITE_ALGORITHMS, num_random: int = 20, num_seeds: int = 5,
              seed: int = 0, total_env_steps: int | None = None,
              log: Callable[[str], None] = print, resume: bool = False) -> dict[str, Any]:
    """Train every algorithm on the hand-crafted and `num_random` random games x `num_seeds`
    seeds; write `results.json` and `results.md` under `out` (atomically) and return the
    results. Seeds are seed, seed + 1, ... (each run's key is `jax.random.key(seed + s)`); the
    random games are drawn from `seed` as well. With `resume`, the algorithms `out/results.json`
    holds for the same games, seeds and config are kept, not run again, and stay in the results
    when `algos` does not name them (`wqmix reproduce`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(HAND_CRAFTED) + [f"random-{i}" for i in range(num_random)]
    payoffs = np.concatenate([np.asarray(list(HAND_CRAFTED.values()), np.float32),
                              random_games(num_random, seed)]).astype(np.float32)
    keys = jnp.stack([jax.random.key(seed + s) for s in range(num_seeds)])
    results: dict[str, Any] = {
        "games": {name: payoffs[i].tolist() for i, name in enumerate(names)},
        "seeds": [seed + s for s in range(num_seeds)],
        "total_env_steps": suite_config(algos[0], total_env_steps).train.total_env_steps,
        "seed_claim": WRITE_UP_CLAIM,
        "algorithms": {},
    }
    keep = done_algorithms(out, num_random, num_seeds, seed, total_env_steps) if resume else {}
    # Algorithms stored before and not asked for now stay in the results (a part of the grid at a time).
    results["algorithms"].update({algo: entry for algo, entry in keep.items() if algo not in algos})
    for algo in algos:
        config = suite_config(algo, total_env_steps)
        if algo in keep:
            results["algorithms"][algo] = keep[algo]
            log(f"{algo:<22} done before: optimal {keep[algo]['optimal_fraction']:6.1%}")
            continue
        t0 = time.perf_counter()
        runs = jax.device_get(make_suite_train(config)(jnp.asarray(payoffs), keys))
        hits = optimal(payoffs, np.asarray(runs["greedy"]))
        # 95% CI: stratified bootstrap over seeds within each game (rliable's StratifiedBootstrap).
        lo, hi = stratified_bootstrap_ci({n: hits[i].astype(float) for i, n in enumerate(names)}, np.mean, seed=seed)
        results["algorithms"][algo] = {
            "optimal_fraction": float(hits.mean()),
            "ci95": [lo, hi],
            "optimal_by_game": {n: int(hits[i].sum()) for i, n in enumerate(names)},
            "greedy": np.asarray(runs["greedy"]).tolist(),
            "q_tot": np.round(np.asarray(runs["q_tot"]), 3).tolist(),
            "wall_s": round(time.perf_counter() - t0, 1),
            "config": json.loads(json.dumps(cfg.to_dict(config))),
        }
        log(f"{algo:<22} optimal {hits.mean():6.1%}  [{lo:.1%}, {hi:.1%}]  ({time.perf_counter() - t0:.0f} s)")
        write_results_json(out / "results.json", results)  # after every algorithm: nothing lost
    results["wall_s"] = round(sum(entry["wall_s"] for entry in results["algorithms"].values()), 1)
    write_results_json(out / "results.json", results)
    write_text_atomic(out / "results.md", format_suite_markdown(results))
    return results


def write_results_json(path: Path, results: dict[str, Any]) -> None:
    """One line per algorithm (compact: the per-run tables are most of the file)."""
    head = {k: v for k, v in results.items() if k != "algorithms"}
    text = json.dumps(head, indent=1)[:-2] + ',\n "algorithms": {\n' + ",\n".join(
        f"  {json.dumps(name)}: {json.dumps(r)}" for name, r in results["algorithms"].items()) + "\n }\n}\n"
    write_text_atomic(path, text)


def format_suite_markdown(results: dict[str, Any]) -> str:
    """The suite's table beside the write-up's claim, then the learned Q_tot of each hand-crafted
    game (seed 0 of each algorithm, with how many seeds were optimal)."""
    algos = results["algorithms"]
    games = list(results["games"])
    num_seeds = len(results["seeds"])
    lines = [
        "# Non-monotonic matrix games: % of runs whose greedy joint action is optimal",
        "",
        f"{len(games)} games ({len(HAND_CRAFTED)} hand-crafted, {len(games) - len(HAND_CRAFTED)} random) x "
        f"{num_seeds} seeds per algorithm, {results['total_env_steps']:,} episodes each, epsilon = 1. "
        f"95% CIs: stratified bootstrap over seeds within games. The write-up claims QMIX "
        f"{WRITE_UP_CLAIM['qmix']:.0%} and WQMIX {WRITE_UP_CLAIM['wqmix']:.0%} optimal (its games and protocol are not given).",
        "",
        "| algorithm | % optimal | 95% CI | hand-crafted | random | " + " | ".join(HAND_CRAFTED) + " |",
        "|---|---|---|---|---|" + "---|" * len(HAND_CRAFTED),
    ]
    for algo, r in algos.items():
        by_game = r["optimal_by_game"]
        hand = sum(by_game[g] for g in HAND_CRAFTED) / (num_seeds * len(HAND_CRAFTED))
        randoms = [g for g in games if g not in HAND_CRAFTED]
        rand = f"{sum(by_game[g] for g in randoms) / (num_seeds * len(randoms)):.1%}" if randoms else "-"
        per_game = " | ".join(f"{by_game[g]}/{num_seeds}" for g in HAND_CRAFTED)
        lines.append(f"| {algo} | {r['optimal_fraction']:.1%} | [{r['ci95'][0]:.1%}, {r['ci95'][1]:.1%}] | "
                     f"{hand:.1%} | {rand} | {per_game} |")
    if "wall_s" in results:
        lines += ["", f"Training time: {results['wall_s']:.0f} s, summed over the algorithms."]
    for gi, game in enumerate(HAND_CRAFTED):
        payoff = np.asarray(results["games"][game])
        lines += ["", f"## {game}", "", "Payoff (agent 0 picks the row):", "", _table(payoff, "{:g}")]
        for algo, r in algos.items():
            q = np.asarray(r["q_tot"][gi][0])
            g = r["greedy"][gi][0]
            lines += ["", f"**{algo}**, seed {results['seeds'][0]}: greedy joint action ({g[0]}, {g[1]}), "
                      f"optimal in {r['optimal_by_game'][game]}/{num_seeds} seeds. Learned "
                      f"{'Q_0 + Q_1' if algo == 'iql' else 'Q_tot'}:", "", _table(q, "{:.1f}")]
    return "\n".join(lines) + "\n"


def _table(values: np.ndarray, fmt: str) -> str:
    n = values.shape[1]
    rows = ["| | " + " | ".join(str(j) for j in range(n)) + " |", "|---|" + "---|" * n]
    rows += [f"| **{i}** | " + " | ".join(fmt.format(v) for v in row) + " |" for i, row in enumerate(values)]
    return "\n".join(rows)
