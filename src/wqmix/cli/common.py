"""The part every command shares: the parser class whose errors are one line and exit 2, value
types for argparse with one-line messages, the `--SECTION.FIELD VALUE` tokens, and running a
command's parser (a `SystemExit` from argparse becomes the exit status)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Iterator

from wqmix.errors import ConfigError


class Parser(argparse.ArgumentParser):
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


def integer(minimum: int) -> Callable[[str], int]:
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


def algorithms(text: str) -> tuple[str, ...]:
    """Comma-separated algorithm names."""
    from wqmix.config import ALGORITHMS

    names = tuple(a.strip() for a in text.split(","))
    for name in names:
        if name not in ALGORITHMS:
            raise argparse.ArgumentTypeError(f"{name!r} is invalid: must be among " + ", ".join(ALGORITHMS))
    return names


def overrides(tokens: list[str], prog: str) -> Iterator[tuple[str, str]]:
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




def standalone(add_parser: Callable[[Any], Parser]) -> Parser:
    """One command's parser on its own, as `wqmix COMMAND` has it (its prog is `wqmix COMMAND`)."""
    return add_parser(Parser(prog="wqmix").add_subparsers())


def exit_status(e: SystemExit) -> int:
    """The exit status a `SystemExit` (argparse's, after --help or an error) stands for."""
    return e.code if isinstance(e.code, int) else 0 if e.code is None else 1


def run_command(parser: Parser, argv: list[str]) -> int:
    """Run a command's handler (its parser's `run` default) on `argv`; returns the exit status."""
    try:
        return parser.get_default("run")(parser, argv)
    except SystemExit as e:
        return exit_status(e)
