"""The `wqmix` command line.

    wqmix train [--preset NAME] [--config FILE] [--env NAME] [--algo NAME] [--out DIR]
                [--seed N] [--num-seeds K] [--quiet] [--SECTION.FIELD VALUE ...]

Whole sections come first (preset, then config file, then env and algo), then every
`--section.field value` override, in order. Any bad value stops with one line naming the field,
before anything is compiled.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import typing
from pathlib import Path

from wqmix.errors import ConfigError, EnvCheckError

USAGE = """usage: wqmix train [options] [--SECTION.FIELD VALUE ...]

Train on an environment with one algorithm; with no option, OW-QMIX on the paper's matrix game.

options:
  --env NAME          environment: {envs}
  --algo NAME         algorithm: {algos}
  --preset NAME       a whole configuration: {presets}
  --config FILE       a JSON config (e.g. a run's config.json); later options override it
  --out DIR           run directory (default: runs/ENV-ALGO-TIME)
  --seed N            seed of the first run (default 0)
  --num-seeds K       train seeds N .. N+K-1 together in one process (vmap)
  --quiet             no progress bar, no tables
  --print-config      print the resolved config as JSON and exit
  --SECTION.FIELD V   set any config field, e.g. --algo.alpha 0.5, --train.total-env-steps 5000,
                      --env.payoff '[[8,-12],[-12,0]]'

fields (current values):
{fields}
"""


def _field_lines(config) -> str:
    from wqmix.config import _field_types

    lines = []

    def walk(node, prefix):
        for name, annotation in _field_types(type(node)).items():
            value = getattr(node, name)
            path = f"{prefix}.{name}" if prefix else name
            if dataclasses.is_dataclass(value):
                walk(value, path)
            else:
                lines.append(f"  --{path:<36} {json.dumps(value)}")

    walk(config, "")
    return "\n".join(lines)


def _usage(config) -> str:
    from wqmix.config import ALGORITHMS, PRESETS
    from wqmix.envs.registry import ENV_CONFIGS

    return USAGE.format(envs=", ".join(ENV_CONFIGS), algos=", ".join(ALGORITHMS),
                        presets=", ".join(PRESETS), fields=_field_lines(config))


def parse_train_args(argv: list[str]):
    """(config, out_dir or None, print_config) from `wqmix train` arguments. Raises ConfigError."""
    from wqmix import config as cfg

    whole: dict[str, str] = {}
    overrides: list[tuple[str, str]] = []
    flags = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise ConfigError("argument", arg, "options look like --name value; see wqmix train --help")
        name, eq, value = arg[2:].partition("=")
        if name in ("quiet", "print-config", "help"):
            flags.add(name)
            i += 1
            continue
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise ConfigError(name, None, "needs a value")
            value = argv[i + 1]
            i += 1
        i += 1
        if name in ("env", "algo", "preset", "config", "out"):
            whole[name] = value
        else:
            overrides.append((name, value))

    config = cfg.preset(whole["preset"]) if "preset" in whole else cfg.Config()
    if "config" in whole:
        try:
            data = json.loads(Path(whole["config"]).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError("config", whole["config"], f"must be a readable JSON file ({e})") from None
        config = cfg.from_dict(data, base=config)
    if "env" in whole:
        config = cfg.with_env(config, whole["env"])
    if "algo" in whole:
        config = cfg.with_algo(config, whole["algo"])
    for dotted, value in overrides:
        config = cfg.apply_override(config, dotted, value)
    if "quiet" in flags:
        config = dataclasses.replace(config, log=dataclasses.replace(config.log, quiet=True))
    if "help" in flags:
        return config, None, "help"
    config = cfg.validate(config)
    out = Path(whole["out"]) if "out" in whole else None
    return config, out, "print-config" if "print-config" in flags else None


def train_main(argv: list[str]) -> int:
    from wqmix import config as cfg

    try:
        config, out, action = parse_train_args(argv)
    except ConfigError as e:
        print(f"wqmix train: error: {e}", file=sys.stderr)
        return 2
    if action == "help":
        print(_usage(config))
        return 0
    if action == "print-config":
        print(json.dumps(cfg.to_dict(config), indent=2))
        return 0
    if out is None:
        out = Path("runs") / f"{config.env.name}-{config.algo.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    from wqmix.run import train_run  # imports JAX: only once the arguments are known to be good

    try:
        train_run(config, out, command=["wqmix", "train", *argv])
    except (EnvCheckError, OSError) as e:
        print(f"wqmix train: error: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["train"]
    command, rest = argv[0], argv[1:]
    if command in ("-h", "--help"):
        print("usage: wqmix {train} ...\n\n  train   train an algorithm on an environment "
              "(wqmix train --help)\n\nWith no command, `wqmix` runs `wqmix train`.")
        return 0
    if command == "train":
        return train_main(rest)
    if command.startswith("--"):  # `wqmix --algo qmix` means `wqmix train --algo qmix`
        return train_main(argv)
    print(f"wqmix: error: unknown command {command!r}; valid commands: train", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
