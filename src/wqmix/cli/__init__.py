"""The `wqmix` command line: one argparse sub-command each for train, eval, check-env, table, plot, bench,
experiment, sweep and reproduce, each in a module of its own here (`wqmix.cli.train`, ...), with the
part they share in `wqmix.cli.common`.

`wqmix` alone runs `wqmix train`, and `wqmix --algo qmix ...` (first token an option) means
`wqmix train --algo qmix ...`. `wqmix train` and `wqmix check-env` read their own options with
argparse and hand every other token, `--SECTION.FIELD VALUE` or `--SECTION.FIELD=VALUE`, in order
to `wqmix.config.apply_override`: whole sections come first (preset, then config file, then env
and algo), then --seed and --num-seeds, then the overrides in order (`wqmix.config.resolve_config`).
Any bad argument or value stops with one line, `wqmix COMMAND: error: MESSAGE` on stderr and exit
status 2, before anything is compiled; `main` returns the exit status.

Adding a command: a module `wqmix/cli/NAME.py` with `add_parser(commands)`, which calls
`commands.add_parser(...)`, declares the arguments and sets `run=run`, and `run(parser, argv) -> int`,
which parses `argv` with `parser` and does the work; its `add_parser` listed in `COMMANDS`. JAX is
imported only once a command runs (or shows a help that lists environments or workloads), so
`wqmix table` and `wqmix --help` stay light.
"""

from __future__ import annotations

import sys
from pathlib import Path

from wqmix.cli import bench, check_env, experiment, plot, reproduce, sweep, table, train
from wqmix.cli import eval as eval_command
from wqmix.cli.common import Parser, exit_status, run_command
from wqmix.cli.train import parse_train_args

__all__ = ["COMMANDS", "build_parser", "main", "parse_train_args"]

COMMANDS = (train.add_parser, eval_command.add_parser, check_env.add_parser, table.add_parser, plot.add_parser,
            bench.add_parser, experiment.add_parser, sweep.add_parser, reproduce.add_parser)
"""The commands, in the order `wqmix --help` lists them: each adds its parser, with `run` set to its
handler."""


def build_parser() -> tuple[Parser, dict[str, Parser]]:
    """The `wqmix` parser and each command's parser by name."""
    parser = Parser(prog="wqmix", description="Weighted QMIX (OW-QMIX, CW-QMIX) with QMIX, VDN and IQL baselines, "
                                              "compiled end to end in JAX.",
                    epilog="With no command, `wqmix` runs `wqmix train`; `wqmix --algo qmix ...` means "
                           "`wqmix train --algo qmix ...`.\nEach command has its own help: wqmix COMMAND --help.")
    commands = parser.add_subparsers(title="commands", dest="command")
    for add in COMMANDS:
        add(commands)
    return parser, dict(commands.choices)


def main(argv: list[str] | None = None) -> int:
    """Run `wqmix ARGV...`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["train", *argv]  # `wqmix --algo qmix` means `wqmix train --algo qmix`
    parser, commands = build_parser()
    if argv[0] not in commands:
        try:
            parser.parse_args(argv)  # --help, or one line naming the unknown command; exits
        except SystemExit as e:
            return exit_status(e)
    if argv[0] in RUNS_CODE:
        warn_other_checkout(argv[0])
    return run_command(commands[argv[0]], argv[1:])


RUNS_CODE = ("train", "eval", "bench", "experiment", "sweep", "reproduce")
"""The commands whose results depend on the code that runs (they record its commit)."""


def warn_other_checkout(command: str) -> None:
    """Say so when the current directory is a wqmix checkout whose code is not the code that runs
    (`wqmix.run_dir.other_checkout`): the results would come from, and record, the other one."""
    from wqmix.run_dir import other_checkout

    here = other_checkout()
    if here is not None:
        import wqmix

        print(f"warning: wqmix {command} runs the code in {Path(wqmix.__file__).parent}, not this checkout's "
              f"({here}); to run this checkout's, set PYTHONPATH={here / 'src'} or pip install -e {here}",
              file=sys.stderr)
