"""The ``hwlearn`` command line. Each subcommand lives in its own module with
``add_parser(subparsers)`` and ``run(args) -> exit code``."""

from __future__ import annotations

import argparse
import os
import re
import sys

from hwlearn import __version__
from hwlearn.errors import HwlearnError

COMMANDS = ["solve", "gradcheck", "train", "run", "runs", "show", "export", "reproduce", "sweep", "bench",
            "virtual-bench", "gui"]


class Parser(argparse.ArgumentParser):
    """argparse, but a value such as ``-0.1,0.2`` or ``-1e-3`` is a value, not an unknown option:
    argparse's own test only knows single plain numbers like ``-0.1``. Subparsers inherit it."""

    NUMBERS = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)*$")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = self.NUMBERS


def _module(name: str):
    return __import__(f"hwlearn.cli.{name.replace('-', '_')}", fromlist=["add_parser"])


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hwlearn", description="Train physical resistor networks in the loop.")
    parser.add_argument("--version", action="version", version=f"hwlearn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        _module(name).add_parser(sub)
    return parser


def with_default_verb(argv: list[str]) -> list[str]:
    """A command with verbs and a DEFAULT_VERB (``hwlearn sweep FILE`` = ``hwlearn sweep run FILE``):
    insert the verb when the word after the command is none of its verbs nor a help option."""
    if len(argv) >= 2 and argv[0] in COMMANDS:
        module = _module(argv[0])
        default = getattr(module, "DEFAULT_VERB", None)
        if default and argv[1] not in (*module.VERBS, "-h", "--help"):
            return [argv[0], default, *argv[1:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(with_default_verb(list(sys.argv[1:] if argv is None else argv)))
    try:
        return int(args.run(args) or 0)
    except HwlearnError as exc:
        print(f"hwlearn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hwlearn {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``hwlearn show --json | head``): not an error of ours. Point stdout
        # at /dev/null so the interpreter's final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
