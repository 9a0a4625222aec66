"""`wqmix experiment matrix-games`: an alias of `wqmix reproduce matrix-games`, kept for its spelling.

The options keep their names here (`--seed K` is reproduce's `--first-seed K`, `--episodes N` its
`--env-steps N`), and the work is `wqmix.experiments.reproduce.reproduce_matrix_games`, as for
`wqmix reproduce matrix-games`.
"""

from __future__ import annotations

import time
from pathlib import Path

from wqmix.cli.common import Parser, algorithms, integer


def add_parser(commands) -> Parser:
    parser = commands.add_parser(
        "experiment", help="alias of `wqmix reproduce matrix-games` (the matrix-games suite)",
        description="An alias of `wqmix reproduce matrix-games`, which is the command to use: the suite of\n"
                    "non-monotonic matrix games (hand-crafted and N random ones) x S seeds for every algorithm:\n"
                    "the % of runs whose greedy joint action is optimal, with 95% bootstrap CIs, beside the projector\n"
                    "write-up's claim (QMIX 60%, WQMIX 98%). Writes results.json, results.md and report.md under\n"
                    "DIR; a rerun into the same DIR keeps the algorithms already done. --seed K is reproduce's\n"
                    "--first-seed K and --episodes N its --env-steps N.")
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
    from wqmix.experiments.reproduce import Request, reproduce_matrix_games

    out = Path(args.out or f"runs/matrix-games-{time.strftime('%Y%m%d-%H%M%S')}")
    request = Request(experiment="matrix-games", out=out, seeds=args.seeds, first_seed=args.seed, algos=args.algos,
                      env_steps=args.episodes, random=args.random, argv=list(argv),
                      command="wqmix experiment " + " ".join(argv))
    try:
        return reproduce_matrix_games(request)
    except (ValueError, OSError) as e:
        return parser.fail(e)
