"""`wqmix reproduce EXPERIMENT`: the paper's experiments, one command each (`wqmix.experiments.reproduce`
does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path

from wqmix.cli.common import Parser, algorithms, integer

REPRODUCE_EXPERIMENTS = ("matrix-game", "matrix-games", "predator-prey", "smax")
"""`wqmix.experiments.reproduce.NAMES`, not imported here so that `wqmix --help` stays light."""


def _punishment(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: must be a number <= 0 (the paper: 0 -0.5 -1 -1.5 -2)")
    return value


def add_parser(commands) -> Parser:
    parser = commands.add_parser(
        "reproduce", help="the paper's experiments, one command each, with a report beside its numbers",
        description="Run one of the paper's experiments as a sweep of run directories (algorithms x seeds x\n"
                    "settings, on Ray: a local cluster unless --address or RAY_ADDRESS names one) and write\n"
                    "DIR/report.md (+ report.json, curves.png/.pdf): final greedy test scores with mean, median,\n"
                    "IQM and 95% stratified-bootstrap CIs beside the paper's and the projector write-up's numbers. Trials have\n"
                    "stable names, so a part of the grid (--algos, --seeds) can run now and the rest later into\n"
                    "the same DIR; running the command again resumes. Experiments: matrix-game (Table 1),\n"
                    "matrix-games (the suite of non-monotonic games of the projector issue; --random; it runs in\n"
                    "this process, not on Ray; `wqmix experiment matrix-games` is an alias of it), predator-prey\n"
                    "(Fig. 2; --punishment), smax (--map; SMAX is not SMAC: its numbers are not comparable).",
        epilog="exit status: 0 when every trial is done, 1 when one failed, 2 for a bad option, 130 after Ctrl-C")
    parser.add_argument("experiment", metavar="EXPERIMENT", choices=REPRODUCE_EXPERIMENTS,
                        help="one of " + ", ".join(REPRODUCE_EXPERIMENTS))
    parser.add_argument("--out", metavar="DIR", help="output folder (default: runs/reproduce-EXPERIMENT)")
    parser.add_argument("--seeds", metavar="N", type=integer(1),
                        help="seeds per algorithm and setting (default: matrix-game 5, matrix-games 5, "
                             "predator-prey 3, smax 3)")
    parser.add_argument("--first-seed", metavar="K", type=integer(0), default=0,
                        help="seeds K .. K+N-1 (default 0): run the grid in parts by seed")
    parser.add_argument("--algos", metavar="LIST", type=algorithms, help="comma-separated algorithms "
                        "(default: the experiment's)")
    parser.add_argument("--env-steps", metavar="N", type=integer(1),
                        help="env steps per seed (default: the paper's; fewer, and the report says so on "
                             "its first line; use a DIR of its own); matrix-games: one-step episodes per run "
                             "(default 2,000; the paper's protocol runs 10,000)")
    parser.add_argument("--punishment", metavar="P", type=_punishment, nargs="+",
                        help="predator-prey: miscapture punishments (default -2; the paper's: 0 -0.5 -1 -1.5 -2)")
    parser.add_argument("--epsilon-anneal", metavar="STEPS", type=integer(1),
                        help="anneal epsilon over this many env steps (the paper's robustness variant: 1000000)")
    parser.add_argument("--map", metavar="M", nargs="+", dest="maps",
                        help="smax: maps (default 3m; the paper's and the write-up's that SMAX has: "
                             "3m 2s3z 3s5z 5m_vs_6m 3s5z_vs_3s6z 6h_vs_8z)")
    parser.add_argument("--protocol", choices=("paper", "jaxmarl"),
                        help="smax: the paper's (official) settings, the default, or JaxMARL's schedule (16 envs x "
                             "128-step windows of an auto-reset stream, 8 updates of 32 windows per rollout, "
                             "pymarl-sized networks); use a DIR of its own")
    parser.add_argument("--random", metavar="N", type=integer(0),
                        help="matrix-games: random non-monotonic games, drawn from --first-seed (default 20)")
    parser.add_argument("--address", metavar="ADDR", help="join this Ray cluster (default: RAY_ADDRESS, else local)")
    parser.add_argument("--max-concurrent", metavar="N", type=integer(1),
                        help="trials in flight at once (default: one per CPU)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the grid and the estimated wall time on this machine, and exit")
    parser.add_argument("--report", action="store_true", help="only write the report from the finished trials")
    parser.add_argument("--last-k", metavar="K", type=integer(1),
                        help="the report's steadier score: the mean of each seed's last K logged tests, beside "
                             "the final evaluation (default 5)")
    parser.set_defaults(run=run)
    return parser


def run(parser: Parser, argv: list[str]) -> int:
    args = parser.parse_intermixed_args(argv)
    from wqmix.experiments.reproduce import Request, reproduce

    request = Request(experiment=args.experiment, out=Path(args.out or f"runs/reproduce-{args.experiment}"),
                      seeds=args.seeds, first_seed=args.first_seed, algos=args.algos, env_steps=args.env_steps,
                      punishments=args.punishment, epsilon_anneal=args.epsilon_anneal, maps=args.maps,
                      protocol=args.protocol,
                      random=args.random,
                      address=args.address, max_concurrent=args.max_concurrent, dry_run=args.dry_run,
                      report_only=args.report, last_k=args.last_k, argv=list(argv), command="wqmix reproduce " + " ".join(argv))
    try:
        return reproduce(request)
    except (ValueError, ImportError, OSError) as e:  # ConfigError and ReproduceError are ValueErrors
        return parser.fail(e)
