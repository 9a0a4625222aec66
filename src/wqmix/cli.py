"""The `wqmix` command line.

    wqmix train [--preset NAME] [--config FILE] [--env NAME] [--algo NAME] [--out DIR]
                [--seed N] [--num-seeds K] [--quiet] [--SECTION.FIELD VALUE ...]
    wqmix check-env NAME [--env.FIELD VALUE ...] [--episodes N] [--seed S]

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
from typing import Iterator

from wqmix.errors import ConfigError, EnvCheckError

USAGE = """usage: wqmix train [options] [--SECTION.FIELD VALUE ...]

Train on an environment with one algorithm; with no option, OW-QMIX on the paper's matrix game.

options:
  --env NAME          environment: {envs}; starts from the env's preset
                      (matrix-game-paper, predator-prey-paper) or the official defaults
  --algo NAME         algorithm: {algos}
  --preset NAME       a whole configuration: {presets}
  --config FILE       a JSON config (e.g. a run's config.json); later options override it
  --out DIR           run directory (default: runs/ENV-ALGO-TIME)
  --resume DIR        continue the run in DIR from its latest checkpoint (exactly)
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


def _options(argv: list[str], flags: tuple[str, ...], command: str,
             short_help: bool = False) -> Iterator[tuple[str, str | None]]:
    """The `--name value` and `--name=value` options of `argv`, in order, as (name, value); a
    name in `flags` takes no value and comes with None (`-h` too, as "help", when `short_help`).
    Raises ConfigError for a stray argument or a missing value."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if short_help and arg == "-h":
            arg = "--help"
        if not arg.startswith("--"):
            raise ConfigError("argument", arg, f"options look like --name value; see wqmix {command} --help")
        name, eq, value = arg[2:].partition("=")
        if name in flags:
            yield name, None
            i += 1
            continue
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise ConfigError(name, None, "needs a value")
            value = argv[i + 1]
            i += 1
        i += 1
        yield name, value


def parse_train_args(argv: list[str]):
    """(config, out_dir or None, print_config) from `wqmix train` arguments. Raises ConfigError."""
    from wqmix import config as cfg

    whole: dict[str, str] = {}
    overrides: list[tuple[str, str]] = []
    flags = set()
    for name, value in _options(argv, ("quiet", "print-config", "help"), "train"):
        if value is None:
            flags.add(name)
        elif name in ("env", "algo", "preset", "config", "out", "resume"):
            whole[name] = value
        else:
            overrides.append((name, value))

    if "resume" in whole:
        others = [f"--{k}" for k in whole if k != "resume"] + [f"--{d}" for d, _ in overrides]
        if others:
            raise ConfigError("resume", whole["resume"], "takes the run's own config.json; drop " + ", ".join(others))
        path = Path(whole["resume"]) / "config.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError("resume", whole["resume"], f"must be a run directory with a readable config.json ({e})") from None
        config = cfg.from_dict(data)
        if "quiet" in flags:
            config = dataclasses.replace(config, log=dataclasses.replace(config.log, quiet=True))
        return config, Path(whole["resume"]), "resume"
    if "preset" in whole:
        config = cfg.preset(whole["preset"])
    elif "env" in whole:
        config = cfg.env_default(whole["env"])
    else:
        config = cfg.Config()
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
    from wqmix.driver import TrainingDiverged, train_run  # imports JAX: only once the arguments are good

    try:
        train_run(config, out, command=["wqmix", "train", *argv], resume=action == "resume")
    except (EnvCheckError, ConfigError, OSError) as e:
        print(f"wqmix train: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"wqmix train: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


CHECK_ENV_USAGE = """usage: wqmix check-env NAME [--env.FIELD VALUE ...] [--episodes N] [--seed S]

Play a few episodes of environment NAME with random available actions and report everything
that breaks the wqmix protocol (shapes, dtypes, NaN/inf, masks, time limit, determinism, masked
actions). Exit status: 0 when it passes, 1 when it does not, 2 for a bad argument.

options:
  --env.FIELD V    set a field of the environment's config, e.g. --env.grid-size 5
  --episodes N     episodes to play (default 2)
  --seed S         seed of the keys and of the random actions (default 0)

environments: {envs}
"""


def parse_check_env_args(argv: list[str]):
    """(env config, episodes, seed) from `wqmix check-env` arguments, or None for --help.
    Raises ConfigError."""
    from wqmix import config as cfg

    if argv and argv[0] in ("-h", "--help"):
        return None
    if not argv or argv[0].startswith("--"):
        raise ConfigError("env", None, "name an environment first: wqmix check-env NAME [options]")
    config = cfg.with_env(cfg.Config(), argv[0])
    episodes, seed = 2, 0
    for name, value in _options(argv[1:], ("help",), "check-env", short_help=True):
        if name == "help":
            return None
        if name == "episodes":
            try:
                episodes = int(value)
            except ValueError:
                episodes = 0
            if episodes < 1:
                raise ConfigError("episodes", value, "must be a positive integer")
        elif name == "seed":
            try:
                seed = int(value)
            except ValueError:
                seed = -1
            if seed < 0:
                raise ConfigError("seed", value, "must be an integer >= 0")
        elif name.startswith("env."):
            config = cfg.apply_override(config, name, value)
        else:
            raise ConfigError(name, value, "unknown option; valid: --env.FIELD, --episodes, --seed")
    config = cfg.validate(config)
    return config.env, episodes, seed


def check_env_main(argv: list[str]) -> int:
    """`wqmix check-env NAME ...`: 0 when the env passes, 1 when it fails, 2 for bad arguments."""
    try:
        parsed = parse_check_env_args(argv)
    except ConfigError as e:
        print(f"wqmix check-env: error: {e}", file=sys.stderr)
        return 2
    if parsed is None:
        from wqmix.envs.registry import ENV_CONFIGS

        print(CHECK_ENV_USAGE.format(envs=", ".join(ENV_CONFIGS)))
        return 0
    env_config, episodes, seed = parsed
    from wqmix.envs.check import check_env  # imports JAX: only once the arguments are known to be good

    try:
        env = env_config.make()
    except Exception as e:  # noqa: BLE001 - a env that cannot be built fails the check
        print(f"{env_config.name}: could not make the environment: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    try:
        check_env(env, num_episodes=episodes, seed=seed)
    except EnvCheckError as e:
        print(str(e), file=sys.stderr)
        return 1
    spec = env.spec
    print(f"{env_config.name}: OK (agents {spec.num_agents}, obs {spec.obs_dim}, state {spec.state_dim}, "
          f"actions {spec.num_actions}, time limit {spec.time_limit})")
    return 0


TABLE_USAGE = """usage: wqmix table RUN_DIR... [--out FILE.md] [--csv FILE.csv] [--reps N]

Final test scores of the runs, one row per (algo, env) with the seeds of all its runs pooled:
mean, median and interquartile mean (IQM), each with a 95% stratified-bootstrap confidence
interval (rliable, Agarwal et al. 2021). The score is test_win_rate where the runs report wins
(SMAX), else greedy_return. Prints a markdown table; writes files only when asked.

options:
  --out FILE.md   also write the markdown table to FILE.md
  --csv FILE.csv  also write the rows (full precision) to FILE.csv
  --reps N        bootstrap resamples (default 2000)
"""

PLOT_USAGE = """usage: wqmix plot RUN_DIR... [--out PREFIX] [--reps N]

Learning curves: one panel per env, one line per algo (mean over all seeds of its runs, with a
shaded 95% bootstrap CI of the mean). The curve is test_return where the runs logged it, else
train_return. Writes PREFIX.png and PREFIX.pdf and prints their paths.

options:
  --out PREFIX    output path without extension (default learning_curves)
  --reps N        bootstrap resamples (default 2000)
"""


def _parse_results_args(argv: list[str], options: tuple[str, ...]):
    """(run dirs, {option: value}) from `wqmix table|plot` arguments, or None for --help.
    Raises ValueError with a one-line message."""
    paths: list[str] = []
    values: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            return None
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name not in options:
                raise ValueError(f"unknown option --{name}; valid: " + ", ".join(f"--{o}" for o in options))
            if not eq:
                if i + 1 >= len(argv):
                    raise ValueError(f"--{name} needs a value")
                value = argv[i + 1]
                i += 1
            values[name] = value
        else:
            paths.append(arg)
        i += 1
    if not paths:
        raise ValueError("name at least one run directory")
    if "reps" in values:
        try:
            reps = int(values["reps"])
        except ValueError:
            reps = 0
        if reps < 1:
            raise ValueError(f"--reps {values['reps']!r} is invalid: must be a positive integer")
    return paths, values


def _results_command(argv: list[str], allowed: tuple[str, ...], name: str, usage: str):
    """(paths, options) of `wqmix table|plot`, or the exit status when there is nothing more to do
    (2 after a one-line error, 0 after the usage)."""
    try:
        parsed = _parse_results_args(argv, allowed)
    except ValueError as e:
        print(f"wqmix {name}: error: {e}", file=sys.stderr)
        return 2
    if parsed is None:
        print(usage)
        return 0
    return parsed


def table_main(argv: list[str]) -> int:
    """`wqmix table RUN_DIR...`: 0 on success, 2 for a bad argument or run directory."""
    parsed = _results_command(argv, ("out", "csv", "reps"), "table", TABLE_USAGE)
    if isinstance(parsed, int):
        return parsed
    paths, options = parsed
    from wqmix.experiments.results import DEFAULT_REPS, format_markdown, load_runs, results_table, write_csv

    try:
        rows = results_table(load_runs(paths), reps=int(options.get("reps", DEFAULT_REPS)))
    except ValueError as e:  # RunDirError is a ValueError
        print(f"wqmix table: error: {e}", file=sys.stderr)
        return 2
    text = format_markdown(rows)
    print(text, end="")
    for key, write in (("out", lambda p: Path(p).write_text(text)), ("csv", lambda p: write_csv(rows, p))):
        if key in options:
            try:
                write(options[key])
            except OSError as e:
                print(f"wqmix table: error: cannot write {options[key]}: {e.strerror or e}", file=sys.stderr)
                return 2
            print(f"wrote {options[key]}", file=sys.stderr)
    return 0


def plot_main(argv: list[str]) -> int:
    """`wqmix plot RUN_DIR...`: 0 on success, 2 for a bad argument or run directory."""
    parsed = _results_command(argv, ("out", "reps"), "plot", PLOT_USAGE)
    if isinstance(parsed, int):
        return parsed
    paths, options = parsed
    from wqmix.experiments.results import DEFAULT_REPS, load_runs, plot_curves

    try:
        written = plot_curves(load_runs(paths), options.get("out", "learning_curves"),
                              reps=int(options.get("reps", DEFAULT_REPS)))
    except (ValueError, ImportError) as e:
        print(f"wqmix plot: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"wqmix plot: error: cannot write {options.get('out', 'learning_curves')}: {e.strerror or e}",
              file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


EVAL_USAGE = """usage: wqmix eval RUN_DIR [--episodes N] [--checkpoint STEP] [--render FILE.png|FILE.gif]

Greedy (epsilon = 0) test episodes of every seed of a run, from its latest checkpoint or the one
at env step STEP, without training. Prints a table and writes RUN_DIR/eval-STEP.json.

  --render FILE   also play one greedy episode of the first seed and draw it: FILE.png, a grid
                  of up to 16 evenly spaced frames; FILE.gif, an animation of every step.
                  Predator-prey, SMAX and MPE spread (needs matplotlib; GIFs also Pillow).
"""


def eval_main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(EVAL_USAGE)
        return 0 if argv else 2
    run_dir, rest = argv[0], argv[1:]
    options: dict[str, int] = {}
    render: Path | None = None
    while rest:
        name = rest[0]
        if name not in ("--episodes", "--checkpoint", "--render") or len(rest) < 2:
            print(f"wqmix eval: error: {name} is not an option (valid: --episodes N, --checkpoint STEP, "
                  "--render FILE.png|FILE.gif)", file=sys.stderr)
            return 2
        if name == "--render":
            if Path(rest[1]).suffix.lower() not in (".png", ".gif"):
                print(f"wqmix eval: error: --render = {rest[1]!r} is invalid: must end with .png or .gif",
                      file=sys.stderr)
                return 2
            render = Path(rest[1])
            rest = rest[2:]
            continue
        try:
            options[name[2:]] = int(rest[1])
        except ValueError:
            print(f"wqmix eval: error: {name} = {rest[1]!r} is invalid: must be an integer", file=sys.stderr)
            return 2
        rest = rest[2:]
    from wqmix.driver import eval_run

    try:
        eval_run(Path(run_dir), episodes=options.get("episodes"), checkpoint=options.get("checkpoint"),
                 render=render)
    except (OSError, ValueError, ImportError) as e:  # ConfigError and EnvCheckError are ValueErrors
        print(f"wqmix eval: error: {e}", file=sys.stderr)
        return 2
    return 0


EXPERIMENT_USAGE = """usage: wqmix experiment matrix-games [--out DIR] [--random N] [--seeds S] [--seed K]
                                   [--algos A,B,...] [--episodes N]

The suite of non-monotonic matrix games (hand-crafted and N random ones) x S seeds for every
algorithm: the % of runs whose greedy joint action is optimal, with 95% bootstrap CIs, beside the
seed document's claim (QMIX 60%, WQMIX 98%). Writes results.json and results.md under DIR.

options:
  --out DIR       output folder (default: runs/matrix-games-TIME)
  --random N      random non-monotonic games drawn from --seed (default 20)
  --seeds S       seeds per game (default 5)
  --seed K        first seed, and the seed of the random games (default 0)
  --algos LIST    comma-separated algorithms (default: all {count})
  --episodes N    episodes per run (default 2,000; the paper's protocol runs 10,000)
"""


def experiment_main(argv: list[str]) -> int:
    from wqmix.config import ALGORITHMS
    from wqmix.experiments.matrix_games import SUITE_ALGORITHMS

    usage = EXPERIMENT_USAGE.format(count=len(SUITE_ALGORITHMS))
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    try:
        if argv[0] != "matrix-games":
            raise ConfigError("experiment", argv[0], "must be matrix-games")
        options = dict(_options(argv[1:], ("help",), "experiment", short_help=True))
        if "help" in options:
            print(usage)
            return 0
        unknown = set(options) - {"out", "random", "seeds", "seed", "algos", "episodes"}
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(name, options[name], "unknown option; valid: --out, --random, --seeds, --seed, --algos, --episodes")

        def count(name: str, default: int | None, minimum: int) -> int | None:
            if name not in options:
                return default
            try:
                value = int(options[name])
            except ValueError:
                raise ConfigError(name, options[name], "must be an integer") from None
            if value < minimum:
                raise ConfigError(name, value, f"must be >= {minimum}")
            return value

        algos = tuple(a.strip() for a in options["algos"].split(",")) if "algos" in options else SUITE_ALGORITHMS
        for algo in algos:
            if algo not in ALGORITHMS:
                raise ConfigError("algos", algo, "must be among " + ", ".join(ALGORITHMS))
        num_random, num_seeds, seed = count("random", 20, 0), count("seeds", 5, 1), count("seed", 0, 0)
        episodes = count("episodes", None, 1)
    except ConfigError as e:
        print(f"wqmix experiment: error: {e}", file=sys.stderr)
        return 2
    from wqmix.experiments.matrix_games import run_suite

    out = Path(options.get("out") or f"runs/matrix-games-{time.strftime('%Y%m%d-%H%M%S')}")
    results = run_suite(out, algos, num_random, num_seeds, seed, episodes)
    print(f"{len(results['games'])} games x {num_seeds} seeds, {results['wall_s']:.0f} s; "
          f"written {out / 'results.md'} and {out / 'results.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["train"]
    command, rest = argv[0], argv[1:]
    if command in ("-h", "--help"):
        print("usage: wqmix {train,eval,check-env,table,plot,bench,experiment} ...\n\n"
              "  train      train an algorithm on an environment (wqmix train --help)\n"
              "  eval       greedy test episodes of a saved run's policy (wqmix eval --help)\n"
              "  check-env  play a few random episodes of an environment and report what breaks the "
              "protocol (wqmix check-env --help)\n"
              "  table      results across seeds: mean, median, IQM with 95% bootstrap CIs (wqmix table --help)\n"
              "  plot       learning curves with 95% CIs as PNG and PDF (wqmix plot --help)\n"
              "  bench      time fixed training workloads (wqmix bench --help)\n"
              "  experiment the matrix-games suite: % optimal per algorithm (wqmix experiment --help)\n\n"
              "With no command, `wqmix` runs `wqmix train`.")
        return 0
    if command == "train":
        return train_main(rest)
    if command == "check-env":
        return check_env_main(rest)
    if command == "eval":
        return eval_main(rest)
    if command == "bench":
        from wqmix.bench import main as bench_main

        return bench_main(rest)
    if command == "table":
        return table_main(rest)
    if command == "plot":
        return plot_main(rest)
    if command == "experiment":
        return experiment_main(rest)
    if command.startswith("--"):  # `wqmix --algo qmix` means `wqmix train --algo qmix`
        return train_main(argv)
    print(f"wqmix: error: unknown command {command!r}; valid commands: train, eval, check-env, table, plot, bench, "
          "experiment",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
