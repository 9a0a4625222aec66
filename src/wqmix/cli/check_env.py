"""`wqmix check-env NAME`: play random episodes of an environment and report what breaks the protocol."""

from __future__ import annotations

import sys

from wqmix.cli.common import Parser, integer, overrides
from wqmix.errors import ConfigError, EnvCheckError


def _check_env_epilog() -> str:
    from wqmix.envs.registry import ENV_CONFIGS

    return ("Every field of the environment's config can be set with --env.FIELD VALUE, e.g. --env.grid-size 5.\n\n"
            "environments: " + ", ".join(ENV_CONFIGS))


def add_parser(commands) -> Parser:
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
    parser.add_argument("--episodes", metavar="N", type=integer(1), default=2, help="episodes to play (default 2)")
    parser.add_argument("--seed", metavar="S", type=integer(0), default=0,
                        help="seed of the keys and of the random actions (default 0)")
    parser.add_argument("--strict", action="store_true",
                        help="count warnings (non-determinism) as errors, as --train.env-check strict does")
    parser.set_defaults(run=run)
    return parser


def run(parser: Parser, argv: list[str]) -> int:
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
        for name, value in overrides(rest, parser.prog):
            if not name.startswith("env."):
                raise ConfigError(name, value, "unknown option; valid: --env.FIELD, --episodes, --seed, --strict")
            config = cfg.apply_override(config, name, value)
        env_config = cfg.validate(config).env
    except ConfigError as e:
        parser.error(str(e))
    from wqmix.envs.check import check_env  # imports JAX: only once the arguments are known to be good

    try:
        env = env_config.make()
    except ConfigError as e:  # the env is not one wqmix can take (continuous actions, a factory's wrong type)
        parser.error(str(e))
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
    for line in getattr(env, "padded", ()):
        print(f"  padded: {line}")
    for warning in warnings:
        print(f"  warning: {warning}")
    return 0
