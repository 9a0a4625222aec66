"""`wqmix train`: train an algorithm on an environment (the default command)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from wqmix.cli.common import Parser, overrides, standalone
from wqmix.errors import ConfigError, EnvCheckError

_TRAIN_FLAGS = ("quiet", "print-config", "help")


def add_parser(commands) -> Parser:
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
    parser.set_defaults(run=run)
    return parser


def _train_epilog(config) -> str:
    """The help's tail: the override syntax, the names --env, --algo and --preset take, and every
    config field with its value in `config`."""
    from wqmix.config import ALGORITHMS, PRESETS, field_types
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
        for name in field_types(type(node)):
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


def _train_config(parser: Parser, argv: list[str]):
    """(config, out_dir or None, action) from `wqmix train` arguments; action is None, "help",
    "print-config" or "resume". Raises ConfigError."""
    from wqmix import config as cfg

    try:
        args, rest = parser.parse_known_args(argv)
    except argparse.ArgumentError as e:  # a value option at the end, or followed by another option
        name = (e.argument_name or "argument").split("/")[-1].lstrip("-")
        raise ConfigError(name, None, "takes no value" if name in _TRAIN_FLAGS else "needs a value") from None
    pairs = list(overrides(rest, parser.prog))
    top_level = [(name, value) for name, value in (("seed", args.seed), ("num_seeds", args.num_seeds))
                 if value is not None]

    quiet = [("log.quiet", "true")] if args.quiet else []
    if args.resume is not None:
        others = [f"--{name}" for name in ("preset", "config", "env", "algo", "out")
                  if getattr(args, name) is not None]
        others += [f"--{name.replace('_', '-')}" for name, _ in top_level] + [f"--{d}" for d, _ in pairs]
        if others:
            raise ConfigError("resume", args.resume, "takes the run's own config.json; drop " + ", ".join(others))
        try:
            data = json.loads((Path(args.resume) / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError("resume", args.resume,
                              f"must be a run directory with a readable config.json ({e})") from None
        config = cfg.resolve_config(config_data=data, overrides=quiet)
        return config, Path(args.resume), "help" if args.help else "resume"
    config = cfg.resolve_config(preset=args.preset, config_file=args.config, env=args.env, algo=args.algo,
                                seed=args.seed, num_seeds=args.num_seeds, overrides=pairs + quiet,
                                check=not args.help)
    if args.help:
        return config, None, "help"
    out = Path(args.out) if args.out is not None else None
    return config, out, "print-config" if args.print_config else None


def parse_train_args(argv: list[str]):
    """(config, out_dir or None, action) from `wqmix train` arguments, as `wqmix train` reads
    them; action is None, "help", "print-config" or "resume". Raises ConfigError."""
    return _train_config(standalone(add_parser), argv)


def run(parser: Parser, argv: list[str]) -> int:
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
    from wqmix.driver import (  # imports JAX: only once the arguments are good
        TrainingDiverged,
        train_run,
    )

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
