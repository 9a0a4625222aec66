"""`wqmix bench`: time fixed training workloads (`wqmix.bench` does the work)."""

from __future__ import annotations

import argparse

from wqmix.cli.common import Parser, integer, run_command, standalone


def _algorithm(text: str) -> str:
    from wqmix.config import ALGORITHMS

    if text not in ALGORITHMS:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: must be one of " + ", ".join(ALGORITHMS))
    return text


def _workload(text: str) -> str:
    from wqmix.bench import WORKLOADS

    if text not in WORKLOADS:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: must be one of " + ", ".join(WORKLOADS))
    return text


def _workload_names() -> str:
    from wqmix.bench import WORKLOADS

    return "workloads:\n" + "\n".join(f"  {w.name:<20} {w.description}" for w in WORKLOADS.values())


def add_parser(commands) -> Parser:
    parser = commands.add_parser(
        "bench", help="time fixed training workloads",
        description="Time fixed training workloads, each in a fresh process: compile seconds, steady env steps/s,\n"
                    "updates/s, the update's GFLOP/s, peak RSS and replay-buffer size, beside this machine's dense\n"
                    "matmul rate.",
        epilog=_workload_names)
    parser.add_argument("--workload", metavar="NAME", type=_workload, action="append",
                        help="a workload (listed below; repeat for several; default: all)")
    parser.add_argument("--algo", metavar="NAME", type=_algorithm, action="append",
                        help="an algorithm (repeat for several; default: ow-qmix)")
    parser.add_argument("--repeats", metavar="N", type=integer(1), default=3,
                        help="timed chunks per workload (default 3)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)
    return parser


def run(parser: Parser, argv: list[str]) -> int:
    args = parser.parse_args(argv)
    from wqmix.bench import WORKLOADS, run_bench

    return run_bench(args.workload or list(WORKLOADS), args.algo or ["ow-qmix"], args.repeats, args.json,
                     args.quiet)


def main(argv: list[str]) -> int:
    """`wqmix bench ARGV...`; returns the exit status."""
    return run_command(standalone(add_parser), list(argv))
