"""`wqmix sweep SPEC` and `wqmix sweep status DIR`: grids and random searches on Ray."""

from __future__ import annotations

from pathlib import Path

from wqmix.cli.common import Parser, integer
from wqmix.errors import ConfigError


def add_parser(commands) -> Parser:
    parser = commands.add_parser(
        "sweep", help="grids and random searches on Ray, each trial a run directory",
        description="Run every trial of a sweep spec (YAML or JSON: a preset, fixed overrides, a grid and random\n"
                    "distributions over any config field, the seeds of each trial, resources per trial) on Ray:\n"
                    "a local cluster unless --address or RAY_ADDRESS names one. The spec is validated before Ray\n"
                    "starts. Running the same command again skips finished trials and resumes the others from\n"
                    "their checkpoints. `wqmix sweep status DIR` prints the manifest (DIR/sweep.json).\n"
                    "See docs/sweeps.md and examples/sweeps/.",
        epilog="exit status: 0 when every trial is done, 1 when one failed, 2 for a bad spec or option, "
               "130 after Ctrl-C")
    parser.add_argument("spec", metavar="SPEC", help="the sweep spec file, or `status`")
    parser.add_argument("sweep_dir", metavar="DIR", nargs="?", help="with `status`: the sweep directory")
    parser.add_argument("--out", metavar="DIR", help="sweep directory (default: runs/sweep-NAME, NAME the spec's)")
    parser.add_argument("--address", metavar="ADDR",
                        help="join this Ray cluster (default: RAY_ADDRESS, else start a local one)")
    parser.add_argument("--max-concurrent", metavar="N", type=integer(1),
                        help="trials in flight at once (default: as many as the cluster's CPUs/GPUs hold)")
    parser.set_defaults(run=run)
    return parser


def run(parser: Parser, argv: list[str]) -> int:
    """`wqmix sweep SPEC` and `wqmix sweep status DIR`."""
    args = parser.parse_args(argv)
    if args.spec == "status":
        if args.sweep_dir is None:
            parser.error("name the sweep directory: wqmix sweep status DIR")
        from rich.console import Console

        from wqmix.sweep.manifest import Manifest

        try:
            manifest = Manifest.read(args.sweep_dir)
        except ValueError as e:
            return parser.fail(e)
        Console(width=160).print(manifest.table())
        return 0
    if args.sweep_dir is not None:
        parser.error(f"unrecognized arguments: {args.sweep_dir}")
    from wqmix.sweep.spec import load_spec

    try:
        spec = load_spec(args.spec)
    except ConfigError as e:
        return parser.fail(f"{args.spec}: {e}" if e.path != "spec" else e)
    from wqmix.sweep.runner import run_sweep  # Ray is imported only once the spec is good

    out = Path(args.out or f"runs/sweep-{spec.name}")
    try:
        manifest = run_sweep(spec, out, address=args.address, max_concurrent=args.max_concurrent,
                             source=str(args.spec))
    except (ConfigError, ImportError, OSError) as e:
        return parser.fail(e)
    except KeyboardInterrupt:  # SweepInterrupted: the running trials were stopped and left pending
        return 130
    return 1 if manifest.counts()["failed"] else 0
