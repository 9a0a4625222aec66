"""`wqmix plot RUN_DIR...`: learning curves with 95% CIs as PNG and PDF."""

from __future__ import annotations

from wqmix.cli.common import Parser, integer


def add_parser(commands) -> Parser:
    parser = commands.add_parser(
        "plot", help="learning curves with 95%% CIs as PNG and PDF",
        description="Learning curves: one panel per env, one line per algo (mean over all seeds of its runs, with "
                    "a\nshaded 95% bootstrap CI of the mean). The curve is test_return where the runs logged it, "
                    "else\ntrain_return. A sweep directory stands for its finished trials, one line per combination of "
                    "swept\nvalues. Writes PREFIX.png and PREFIX.pdf and prints their paths.")
    parser.add_argument("runs", metavar="RUN_DIR", nargs="+", help="run directories or sweep directories")
    parser.add_argument("--out", metavar="PREFIX", default="learning_curves",
                        help="output path without extension (default learning_curves)")
    parser.add_argument("--reps", metavar="N", type=integer(1), help="bootstrap resamples (default 2000)")
    parser.set_defaults(run=run)
    return parser


def run(parser: Parser, argv: list[str]) -> int:
    """`wqmix plot RUN_DIR...`: 0 on success, 2 for a bad argument or run directory."""
    args = parser.parse_intermixed_args(argv)
    from wqmix.experiments.results import DEFAULT_REPS, load_runs, plot_curves

    try:
        written = plot_curves(load_runs(args.runs), args.out, reps=args.reps or DEFAULT_REPS)
    except (ValueError, ImportError) as e:
        return parser.fail(e)
    except OSError as e:
        return parser.fail(f"cannot write {args.out}: {e.strerror or e}")
    for path in written:
        print(path)
    return 0
