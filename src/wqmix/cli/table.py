"""`wqmix table RUN_DIR...`: mean, median and IQM of the final test scores across seeds, with CIs."""

from __future__ import annotations

import sys
from pathlib import Path

from wqmix.cli.common import Parser, integer


def add_parser(commands) -> Parser:
    parser = commands.add_parser(
        "table", help="mean, median, IQM across seeds with 95%% bootstrap CIs",
        description="Final test scores of the runs, one row per (algo, env) with the seeds of all its runs pooled:\n"
                    "mean, median and interquartile mean (IQM), each with a 95% stratified-bootstrap confidence\n"
                    "interval (rliable, Agarwal et al. 2021). The score is test_win_rate where the runs report wins\n"
                    "(SMAX), else greedy_return. A sweep directory stands for its finished trials, one row per\n"
                    "combination of swept values. Prints a markdown table; writes files only when asked.")
    parser.add_argument("runs", metavar="RUN_DIR", nargs="+", help="run directories or sweep directories")
    parser.add_argument("--out", metavar="FILE.md", help="also write the markdown table to FILE.md")
    parser.add_argument("--csv", metavar="FILE.csv", help="also write the rows (full precision) to FILE.csv")
    parser.add_argument("--reps", metavar="N", type=integer(1), help="bootstrap resamples (default 2000)")
    parser.add_argument("--last-k", metavar="K", type=integer(1),
                        help="score each seed by the mean of its last K logged greedy tests instead of its final "
                             "evaluation (steadier: K tests' episodes instead of one's)")
    parser.set_defaults(run=run)
    return parser


def run(parser: Parser, argv: list[str]) -> int:
    """`wqmix table RUN_DIR...`: 0 on success, 2 for a bad argument or run directory."""
    args = parser.parse_intermixed_args(argv)
    from wqmix.experiments.results import (DEFAULT_REPS, format_markdown, load_runs, results_table, with_last_tests,
                                           write_csv)

    try:
        runs = load_runs(args.runs)
        if args.last_k is not None:
            runs = with_last_tests(runs, args.last_k)
            if runs is None:
                return parser.fail("--last-k: some run logged no greedy test for some seed (its curves are of the "
                                   "training return); leave --last-k out to score the final evaluation")
        rows = results_table(runs, reps=args.reps or DEFAULT_REPS)
    except ValueError as e:  # RunDirError is a ValueError
        return parser.fail(e)
    text = format_markdown(rows)
    print(text, end="")
    for path, write in ((args.out, lambda p: Path(p).write_text(text)), (args.csv, lambda p: write_csv(rows, p))):
        if path is not None:
            try:
                write(path)
            except OSError as e:
                return parser.fail(f"cannot write {path}: {e.strerror or e}")
            print(f"wrote {path}", file=sys.stderr)
    return 0
