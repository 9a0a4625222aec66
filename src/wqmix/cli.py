"""The `wqmix` command line: one argparse sub-command each for train, eval, check-env, table, plot, bench, experiment.

`wqmix` alone runs `wqmix train`, and `wqmix --algo qmix ...` (first token an option) means
`wqmix train --algo qmix ...`. `wqmix train` and `wqmix check-env` read their own options with
argparse and hand every other token, `--SECTION.FIELD VALUE` or `--SECTION.FIELD=VALUE`, in order
to `wqmix.config.apply_override`: whole sections come first (preset, then config file, then env
and algo), then --seed and --num-seeds, then the overrides in order. Any bad argument or value
stops with one line, `wqmix COMMAND: error: MESSAGE` on stderr and exit status 2, before anything
is compiled; `main` returns the exit status.

Adding a command: a `_NAME_parser(commands)` function that calls `commands.add_parser(...)`,
declares the arguments and sets `run=NAME_main`, listed in `COMMANDS`; and `NAME_main(parser,
argv) -> int`, which parses `argv` with `parser` and does the work. JAX is imported only once a
command runs (or shows a help that lists environments or workloads), so `wqmix table` and
`wqmix --help` stay light.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from wqmix.errors import ConfigError, EnvCheckError


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, `PROG: error: MESSAGE` on stderr (exit 2, no
    usage), whose help keeps its text's line breaks, and whose epilog may be a function (called
    when the help is shown, for lists that take heavy imports)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def fail(self, message: object) -> int:
        """Report an error found after parsing (a run directory, a file) the same way; returns 2."""
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        return 2

    def format_help(self) -> str:
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


# --------------------------------------------------------------------------------------------
# Value types: one-line messages, which argparse prefixes with "argument --OPTION: ".


def _integer(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `minimum`."""
    valid = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def integer(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is invalid: must be {valid}")
        return value

    return integer


def _image_file(text: str) -> Path:
    if Path(text).suffix.lower() not in (".png", ".gif"):
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: must end with .png or .gif")
    return Path(text)


def _algorithm(text: str) -> str:
    from wqmix.config import ALGORITHMS

    if text not in ALGORITHMS:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: must be one of " + ", ".join(ALGORITHMS))
    return text


def _algorithms(text: str) -> tuple[str, ...]:
    """Comma-separated algorithm names."""
    from wqmix.config import ALGORITHMS

    names = tuple(a.strip() for a in text.split(","))
    for name in names:
        if name not in ALGORITHMS:
            raise argparse.ArgumentTypeError(f"{name!r} is invalid: must be among " + ", ".join(ALGORITHMS))
    return names


def _workload(text: str) -> str:
    from wqmix.bench import WORKLOADS

    if text not in WORKLOADS:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: must be one of " + ", ".join(WORKLOADS))
    return text


def _overrides(tokens: list[str], prog: str) -> Iterator[tuple[str, str]]:
    """The `--name value` and `--name=value` pairs of the tokens argparse left over, in order.
    Raises ConfigError for a stray token or a missing value."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--"):
            raise ConfigError("argument", token, f"options look like --name value; see {prog} --help")
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(tokens) or tokens[i + 1].startswith("--"):
                raise ConfigError(name, None, "needs a value")
            value = tokens[i + 1]
            i += 1
        i += 1
        yield name, value


# --------------------------------------------------------------------------------------------
# wqmix train


_TRAIN_FLAGS = ("quiet", "print-config", "help")


def _train_parser(commands) -> _Parser:
    parser = commands.add_parser(
        "train", help="train an algorithm on an environment (default)", add_help=False,
        exit_on_error=False,  # parse_train_args turns a missing value into a ConfigError
        usage="%(prog)s [options] [--SECTION.FIELD VALUE ...]",
        description="Train on an environment with one algorithm; with no option, OW-QMIX on the paper's matrix "
                    "game.\nWhole sections come first (preset, then config file, then env and algo), then --seed, "
                    "--num-seeds\nand every --SECTION.FIELD override, in order.")
    add = parser.add_argument
    add("-h", "--help", action="store_true",
        help="show this help, with every field at its value after the options given before it, and exit")
    add("--env", metavar="NAME", help="environment (listed below); starts from the env's preset "
                                      "(matrix-game-paper, predator-prey-paper) or the official defaults")
    add("--algo", metavar="NAME", help="algorithm (listed below)")
    add("--preset", metavar="NAME", help="a whole configuration (listed below)")
    add("--config", metavar="FILE", help="a JSON config (e.g. a run's config.json); later options override it")
    add("--out", metavar="DIR", help="run directory (default: runs/ENV-ALGO-TIME)")
    add("--resume", metavar="DIR", help="continue the run in DIR from its latest checkpoint (exactly)")
    add("--seed", metavar="N", help="seed of the first run (default 0)")
    add("--num-seeds", metavar="K", help="train seeds N .. N+K-1 together in one process (vmap)")
    add("--quiet", action="store_true", help="no progress bar, no tables")
    add("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    parser.set_defaults(run=train_main)
    return parser


def _train_epilog(config) -> str:
    """The help's tail: the override syntax, the names --env, --algo and --preset take, and every
    config field with its value in `config`."""
    from wqmix.config import ALGORITHMS, PRESETS, _field_types
    from wqmix.envs.registry import ENV_CONFIGS

    lines = [
        "Every config field below can be set with --SECTION.FIELD VALUE (or --SECTION.FIELD=VALUE), e.g.",
        "--algo.alpha 0.5, --train.total-env-steps 5000, --env.payoff '[[8,-12],[-12,0]]'.",
        "",
        "environments: " + ", ".join(ENV_CONFIGS),
        "algorithms:   " + ", ".join(ALGORITHMS),
        "presets:      " + ", ".join(PRESETS),
        "",
        "fields (current values):",
    ]

    def walk(node, prefix):
        for name in _field_types(type(node)):
            value = getattr(node, name)
            path = f"{prefix}.{name}" if prefix else name
            if dataclasses.is_dataclass(value):
                if path in ("env", "algo"):
                    lines.append(f"  --{path:<36} {json.dumps(value.name)}")
                walk(value, path)
            else:
                lines.append(f"  --{path:<36} {json.dumps(value)}")

    walk(config, "")
    return "\n".join(lines)


def _train_config(parser: _Parser, argv: list[str]):
    """(config, out_dir or None, action) from `wqmix train` arguments; action is None, "help",
    "print-config" or "resume". Raises ConfigError."""
    from wqmix import config as cfg

    try:
        args, rest = parser.parse_known_args(argv)
    except argparse.ArgumentError as e:  # a value option at the end, or followed by another option
        name = (e.argument_name or "argument").split("/")[-1].lstrip("-")
        raise ConfigError(name, None, "takes no value" if name in _TRAIN_FLAGS else "needs a value") from None
    overrides = list(_overrides(rest, parser.prog))
    top_level = [(name, value) for name, value in (("seed", args.seed), ("num_seeds", args.num_seeds))
                 if value is not None]

    quiet = [("log.quiet", "true")] if args.quiet else []
    if args.resume is not None:
        others = [f"--{name}" for name in ("preset", "config", "env", "algo", "out")
                  if getattr(args, name) is not None]
        others += [f"--{name.replace('_', '-')}" for name, _ in top_level] + [f"--{d}" for d, _ in overrides]
        if others:
            raise ConfigError("resume", args.resume, "takes the run's own config.json; drop " + ", ".join(others))
        try:
            data = json.loads((Path(args.resume) / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError("resume", args.resume, f"must be a run directory with a readable config.json ({e})") from None
        config = cfg.resolve_config(config_data=data, overrides=quiet)
        return config, Path(args.resume), "help" if args.help else "resume"
    config = cfg.resolve_config(preset=args.preset, config_file=args.config, env=args.env, algo=args.algo,
                                seed=args.seed, num_seeds=args.num_seeds, overrides=overrides + quiet,
                                check=not args.help)
    if args.help:
        return config, None, "help"
    out = Path(args.out) if args.out is not None else None
    return config, out, "print-config" if args.print_config else None


def parse_train_args(argv: list[str]):
    """(config, out_dir or None, action) from `wqmix train` arguments, as `wqmix train` reads
    them; action is None, "help", "print-config" or "resume". Raises ConfigError."""
    return _train_config(_commands()["train"], argv)


def train_main(parser: _Parser, argv: list[str]) -> int:
    from wqmix import config as cfg

    try:
        config, out, action = _train_config(parser, argv)
    except ConfigError as e:
        parser.error(str(e))
    if action == "help":
        parser.epilog = _train_epilog(config)
        parser.print_help()
        return 0
    if action == "print-config":
        print(json.dumps(cfg.to_dict(config), indent=2))
        return 0
    if out is None:
        out = Path("runs") / f"{config.env.name}-{config.algo.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    from wqmix.driver import TrainingDiverged, train_run  # imports JAX: only once the arguments are good

    try:
        train_run(config, out, command=["wqmix", "train", *argv], resume=action == "resume")
    except (EnvCheckError, ConfigError, OSError) as e:
        return parser.fail(e)
    except TrainingDiverged as e:
        print(f"{parser.prog}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


# --------------------------------------------------------------------------------------------
# wqmix check-env


def _check_env_epilog() -> str:
    from wqmix.envs.registry import ENV_CONFIGS

    return ("Every field of the environment's config can be set with --env.FIELD VALUE, e.g. --env.grid-size 5.\n\n"
            "environments: " + ", ".join(ENV_CONFIGS))


def _check_env_parser(commands) -> _Parser:
    parser = commands.add_parser(
        "check-env", help="play random episodes; report what breaks the protocol",
        usage="%(prog)s NAME | --env NAME [--env.FIELD VALUE ...] [--episodes N] [--seed S] [--strict]",
        description="Play a few episodes of environment NAME with random available actions and report everything\n"
                    "that breaks the wqmix protocol (shapes, dtypes, NaN/inf, masks, time limit, determinism, masked\n"
                    "actions). Errors would corrupt training; warnings (non-determinism) would not, and training\n"
                    "goes on with them (--train.env-check). Exit status: 0 when it passes, with or without\n"
                    "warnings, 1 with an error, 2 for a bad argument.",
        epilog=_check_env_epilog)
    parser.add_argument("name", metavar="NAME", help="the environment's registry name (listed below)")
    parser.add_argument("--episodes", metavar="N", type=_integer(1), default=2, help="episodes to play (default 2)")
    parser.add_argument("--seed", metavar="S", type=_integer(0), default=0,
                        help="seed of the keys and of the random actions (default 0)")
    parser.add_argument("--strict", action="store_true",
                        help="count warnings (non-determinism) as errors, as --train.env-check strict does")
    parser.set_defaults(run=check_env_main)
    return parser


def check_env_main(parser: _Parser, argv: list[str]) -> int:
    """`wqmix check-env NAME ...`: 0 when the env passes, 1 when it fails, 2 for bad arguments."""
    from wqmix import config as cfg

    argv = list(argv)
    for i, arg in enumerate(argv):  # `--env NAME` (as `wqmix train` takes it) is NAME
        if arg == "--env" or arg.startswith("--env="):
            name = arg.partition("=")[2] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            if not name or name.startswith("-"):
                parser.error("--env needs an environment name: wqmix check-env --env NAME [--env.FIELD VALUE ...]")
            argv = [name] + argv[:i] + argv[i + (1 if "=" in arg else 2):]
            break
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        # else argparse would take the first option's value (`5` of `--env.grid-size 5`) for NAME
        parser.error("name an environment first: wqmix check-env NAME (or --env NAME) [--env.FIELD VALUE ...]")
    args, rest = parser.parse_known_args(argv)
    try:
        config = cfg.with_env(cfg.Config(), args.name)
        for name, value in _overrides(rest, parser.prog):
            if not name.startswith("env."):
                raise ConfigError(name, value, "unknown option; valid: --env.FIELD, --episodes, --seed, --strict")
            config = cfg.apply_override(config, name, value)
        env_config = cfg.validate(config).env
    except ConfigError as e:
        parser.error(str(e))
    from wqmix.envs.check import check_env  # imports JAX: only once the arguments are known to be good

    try:
        env = env_config.make()
    except Exception as e:  # noqa: BLE001 - a env that cannot be built fails the check
        print(f"{env_config.name}: could not make the environment: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    try:
        warnings = check_env(env, num_episodes=args.episodes, seed=args.seed, strict=args.strict)
    except EnvCheckError as e:
        print(str(e), file=sys.stderr)
        return 1
    spec = env.spec
    passed = "OK" if not warnings else f"OK with {len(warnings)} warning(s), which do not stop training"
    print(f"{env_config.name}: {passed} (agents {spec.num_agents}, obs {spec.obs_dim}, state {spec.state_dim}, "
          f"actions {spec.num_actions}, time limit {spec.time_limit})")
    for warning in warnings:
        print(f"  warning: {warning}")
    return 0


# --------------------------------------------------------------------------------------------
# wqmix eval


def _eval_parser(commands) -> _Parser:
    parser = commands.add_parser(
        "eval", help="greedy test episodes of a saved run's policy",
        description="Greedy (epsilon = 0) test episodes of every seed of a run, from its latest checkpoint or the "
                    "one\nat env step STEP, without training. Prints a table and writes RUN_DIR/eval-STEP.json.")
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run directory of `wqmix train`")
    parser.add_argument("--episodes", metavar="N", type=_integer(1),
                        help="episodes per seed (default: the run's log.test_episodes)")
    parser.add_argument("--checkpoint", metavar="STEP", type=_integer(0),
                        help="the checkpoint at env step STEP (default: the latest)")
    parser.add_argument("--render", metavar="FILE", type=_image_file,
                        help="also play one greedy episode of the first seed and draw it: FILE.png, a grid of up "
                             "to 16 evenly spaced frames; FILE.gif, an animation of every step. Predator-prey, "
                             "SMAX and MPE spread (needs matplotlib; GIFs also Pillow)")
    parser.set_defaults(run=eval_main)
    return parser


def eval_main(parser: _Parser, argv: list[str]) -> int:
    args = parser.parse_intermixed_args(argv)
    from wqmix.driver import eval_run

    try:
        eval_run(args.run_dir, episodes=args.episodes, checkpoint=args.checkpoint, render=args.render)
    except (OSError, ValueError, ImportError) as e:  # ConfigError and EnvCheckError are ValueErrors
        return parser.fail(e)
    return 0


# --------------------------------------------------------------------------------------------
# wqmix table, wqmix plot


def _table_parser(commands) -> _Parser:
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
    parser.add_argument("--reps", metavar="N", type=_integer(1), help="bootstrap resamples (default 2000)")
    parser.set_defaults(run=table_main)
    return parser


def table_main(parser: _Parser, argv: list[str]) -> int:
    """`wqmix table RUN_DIR...`: 0 on success, 2 for a bad argument or run directory."""
    args = parser.parse_intermixed_args(argv)
    from wqmix.experiments.results import DEFAULT_REPS, format_markdown, load_runs, results_table, write_csv

    try:
        rows = results_table(load_runs(args.runs), reps=args.reps or DEFAULT_REPS)
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


def _plot_parser(commands) -> _Parser:
    parser = commands.add_parser(
        "plot", help="learning curves with 95%% CIs as PNG and PDF",
        description="Learning curves: one panel per env, one line per algo (mean over all seeds of its runs, with "
                    "a\nshaded 95% bootstrap CI of the mean). The curve is test_return where the runs logged it, "
                    "else\ntrain_return. A sweep directory stands for its finished trials, one line per combination of "
                    "swept\nvalues. Writes PREFIX.png and PREFIX.pdf and prints their paths.")
    parser.add_argument("runs", metavar="RUN_DIR", nargs="+", help="run directories or sweep directories")
    parser.add_argument("--out", metavar="PREFIX", default="learning_curves",
                        help="output path without extension (default learning_curves)")
    parser.add_argument("--reps", metavar="N", type=_integer(1), help="bootstrap resamples (default 2000)")
    parser.set_defaults(run=plot_main)
    return parser


def plot_main(parser: _Parser, argv: list[str]) -> int:
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


# --------------------------------------------------------------------------------------------
# wqmix bench


def _workload_names() -> str:
    from wqmix.bench import WORKLOADS

    return "workloads:\n" + "\n".join(f"  {w.name:<20} {w.description}" for w in WORKLOADS.values())


def _bench_parser(commands) -> _Parser:
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
    parser.add_argument("--repeats", metavar="N", type=_integer(1), default=3,
                        help="timed chunks per workload (default 3)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=bench_main)
    return parser


def bench_main(parser: _Parser, argv: list[str]) -> int:
    args = parser.parse_args(argv)
    from wqmix.bench import WORKLOADS, run_bench

    return run_bench(args.workload or list(WORKLOADS), args.algo or ["ow-qmix"], args.repeats, args.json,
                     args.quiet)


# --------------------------------------------------------------------------------------------
# wqmix experiment


def _experiment_parser(commands) -> _Parser:
    parser = commands.add_parser(
        "experiment", help="the matrix-games suite: %% optimal per algorithm",
        description="matrix-games: the suite of non-monotonic matrix games (hand-crafted and N random ones) x S "
                    "seeds\nfor every algorithm: the % of runs whose greedy joint action is optimal, with 95% "
                    "bootstrap CIs,\nbeside the seed document's claim (QMIX 60%, WQMIX 98%). Writes results.json "
                    "and results.md\nunder DIR.")
    parser.add_argument("suite", metavar="SUITE", choices=("matrix-games",), help="the experiment: matrix-games")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: runs/matrix-games-TIME)")
    parser.add_argument("--random", metavar="N", type=_integer(0), default=20,
                        help="random non-monotonic games drawn from --seed (default 20)")
    parser.add_argument("--seeds", metavar="S", type=_integer(1), default=5, help="seeds per game (default 5)")
    parser.add_argument("--seed", metavar="K", type=_integer(0), default=0,
                        help="first seed, and the seed of the random games (default 0)")
    parser.add_argument("--algos", metavar="LIST", type=_algorithms,
                        help="comma-separated algorithms (default: every algorithm of the suite)")
    parser.add_argument("--episodes", metavar="N", type=_integer(1),
                        help="episodes per run (default 2,000; the paper's protocol runs 10,000)")
    parser.set_defaults(run=experiment_main)
    return parser


def experiment_main(parser: _Parser, argv: list[str]) -> int:
    args = parser.parse_intermixed_args(argv)
    from wqmix.experiments.matrix_games import SUITE_ALGORITHMS, run_suite

    out = Path(args.out or f"runs/matrix-games-{time.strftime('%Y%m%d-%H%M%S')}")
    results = run_suite(out, args.algos or SUITE_ALGORITHMS, args.random, args.seeds, args.seed, args.episodes)
    print(f"{len(results['games'])} games x {args.seeds} seeds, {results['wall_s']:.0f} s; "
          f"written {out / 'results.md'} and {out / 'results.json'}")
    return 0


# --------------------------------------------------------------------------------------------
# wqmix


def _sweep_parser(commands) -> _Parser:
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
    parser.add_argument("--max-concurrent", metavar="N", type=_integer(1),
                        help="trials in flight at once (default: as many as the cluster's CPUs/GPUs hold)")
    parser.set_defaults(run=sweep_main)
    return parser


def sweep_main(parser: _Parser, argv: list[str]) -> int:
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


# --------------------------------------------------------------------------------------------
# wqmix reproduce


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


def _reproduce_parser(commands) -> _Parser:
    parser = commands.add_parser(
        "reproduce", help="the paper's experiments, one command each, with a report beside its numbers",
        description="Run one of the paper's experiments as a sweep of run directories (algorithms x seeds x\n"
                    "settings, on Ray: a local cluster unless --address or RAY_ADDRESS names one) and write\n"
                    "DIR/report.md (+ report.json, curves.png/.pdf): final greedy test scores with mean, median,\n"
                    "IQM and 95% stratified-bootstrap CIs beside the paper's and the seed's numbers. Trials have\n"
                    "stable names, so a part of the grid (--algos, --seeds) can run now and the rest later into\n"
                    "the same DIR; running the command again resumes. Experiments: matrix-game (Table 1),\n"
                    "matrix-games (the suite of the projector issue), predator-prey (Fig. 2; --punishment),\n"
                    "smax (--map; SMAX is not SMAC: its numbers are not comparable).",
        epilog="exit status: 0 when every trial is done, 1 when one failed, 2 for a bad option, 130 after Ctrl-C")
    parser.add_argument("experiment", metavar="EXPERIMENT", choices=REPRODUCE_EXPERIMENTS,
                        help="one of " + ", ".join(REPRODUCE_EXPERIMENTS))
    parser.add_argument("--out", metavar="DIR", help="output folder (default: runs/reproduce-EXPERIMENT)")
    parser.add_argument("--seeds", metavar="N", type=_integer(1),
                        help="seeds per algorithm and setting (default: matrix-game 5, predator-prey 3, smax 3)")
    parser.add_argument("--first-seed", metavar="K", type=_integer(0), default=0,
                        help="seeds K .. K+N-1 (default 0): run the grid in parts by seed")
    parser.add_argument("--algos", metavar="LIST", type=_algorithms, help="comma-separated algorithms "
                        "(default: the experiment's)")
    parser.add_argument("--env-steps", metavar="N", type=_integer(1),
                        help="env steps per seed (default: the paper's; fewer, and the report says so on "
                             "its first line; use a DIR of its own)")
    parser.add_argument("--punishment", metavar="P", type=_punishment, nargs="+",
                        help="predator-prey: miscapture punishments (default -2; the paper's: 0 -0.5 -1 -1.5 -2)")
    parser.add_argument("--epsilon-anneal", metavar="STEPS", type=_integer(1),
                        help="anneal epsilon over this many env steps (the paper's robustness variant: 1000000)")
    parser.add_argument("--map", metavar="M", nargs="+", dest="maps",
                        help="smax: maps (default 3m; the paper's and the seed's that SMAX has: "
                             "3m 2s3z 3s5z 5m_vs_6m 3s5z_vs_3s6z 6h_vs_8z)")
    parser.add_argument("--address", metavar="ADDR", help="join this Ray cluster (default: RAY_ADDRESS, else local)")
    parser.add_argument("--max-concurrent", metavar="N", type=_integer(1),
                        help="trials in flight at once (default: one per CPU)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the grid and the estimated wall time on this machine, and exit")
    parser.add_argument("--report", action="store_true", help="only write the report from the finished trials")
    parser.set_defaults(run=reproduce_main)
    return parser


def reproduce_main(parser: _Parser, argv: list[str]) -> int:
    args = parser.parse_intermixed_args(argv)
    from wqmix.experiments.reproduce import Request, reproduce

    request = Request(experiment=args.experiment, out=Path(args.out or f"runs/reproduce-{args.experiment}"),
                      seeds=args.seeds, first_seed=args.first_seed, algos=args.algos, env_steps=args.env_steps,
                      punishments=args.punishment, epsilon_anneal=args.epsilon_anneal, maps=args.maps,
                      address=args.address, max_concurrent=args.max_concurrent, dry_run=args.dry_run,
                      report_only=args.report, argv=list(argv), command="wqmix reproduce " + " ".join(argv))
    try:
        return reproduce(request)
    except (ValueError, ImportError, OSError) as e:  # ConfigError and ReproduceError are ValueErrors
        return parser.fail(e)


COMMANDS = (_train_parser, _eval_parser, _check_env_parser, _table_parser, _plot_parser, _bench_parser,
            _experiment_parser, _sweep_parser, _reproduce_parser)
"""The commands, in the order `wqmix --help` lists them: each adds its parser, with `run` set to its
handler."""


def build_parser() -> tuple[_Parser, dict[str, _Parser]]:
    """The `wqmix` parser and each command's parser by name."""
    parser = _Parser(prog="wqmix", description="Weighted QMIX (OW-QMIX, CW-QMIX) with QMIX, VDN and IQL baselines, "
                                               "compiled end to end in JAX.",
                     epilog="With no command, `wqmix` runs `wqmix train`; `wqmix --algo qmix ...` means "
                            "`wqmix train --algo qmix ...`.\nEach command has its own help: wqmix COMMAND --help.")
    commands = parser.add_subparsers(title="commands", dest="command")
    for add in COMMANDS:
        add(commands)
    return parser, dict(commands.choices)


def _commands() -> dict[str, _Parser]:
    return build_parser()[1]


def main(argv: list[str] | None = None) -> int:
    """Run `wqmix ARGV...`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["train", *argv]  # `wqmix --algo qmix` means `wqmix train --algo qmix`
    parser, commands = build_parser()
    try:
        if argv[0] not in commands:
            parser.parse_args(argv)  # --help, or one line naming the unknown command; exits
        command = commands[argv[0]]
        return command.get_default("run")(command, argv[1:])
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 1


if __name__ == "__main__":
    sys.exit(main())
