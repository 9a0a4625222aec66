"""`wqmix experiment matrix-games`: the suite of non-monotonic matrix games."""

from __future__ import annotations

import time
from pathlib import Path

from wqmix.cli.common import Parser, algorithms, integer


def add_parser(commands) -> Parser:
    parser = commands.add_parser(
        "experiment", help="the matrix-games suite: %% optimal per algorithm",
        description="matrix-games: the suite of non-monotonic matrix games (hand-crafted and N random ones) x S "
                    "seeds\nfor every algorithm: the % of runs whose greedy joint action is optimal, with 95% "
                    "bootstrap CIs,\nbeside the seed document's claim (QMIX 60%, WQMIX 98%). Writes results.json "
                    "and results.md\nunder DIR.")
    parser.add_argument("suite", metavar="SUITE", choices=("matrix-games",), help="the experiment: matrix-games")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: runs/matrix-games-TIME)")
    parser.add_argument("--random", metavar="N", type=integer(0), default=20,
                        help="random non-monotonic games drawn from --seed (default 20)")
    parser.add_argument("--seeds", metavar="S", type=integer(1), default=5, help="seeds per game (default 5)")
    parser.add_argument("--seed", metavar="K", type=integer(0), default=0,
                        help="first seed, and the seed of the random games (default 0)")
    parser.add_argument("--algos", metavar="LIST", type=algorithms,
                        help="comma-separated algorithms (default: every algorithm of the suite)")
    parser.add_argument("--episodes", metavar="N", type=integer(1),
                        help="episodes per run (default 2,000; the paper's protocol runs 10,000)")
    parser.set_defaults(run=run)
    return parser


def run(parser: Parser, argv: list[str]) -> int:
    args = parser.parse_intermixed_args(argv)
    from wqmix.experiments.matrix_games import SUITE_ALGORITHMS, run_suite

    out = Path(args.out or f"runs/matrix-games-{time.strftime('%Y%m%d-%H%M%S')}")
    results = run_suite(out, args.algos or SUITE_ALGORITHMS, args.random, args.seeds, args.seed, args.episodes)
    print(f"{len(results['games'])} games x {args.seeds} seeds, {results['wall_s']:.0f} s; "
          f"written {out / 'results.md'} and {out / 'results.json'}")
    return 0
