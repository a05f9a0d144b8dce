"""The ``hwlearn`` command line. Each subcommand lives in its own module with
``add_parser(subparsers)`` and ``run(args) -> exit code``."""

from __future__ import annotations

import argparse
import re
import sys

from hwlearn import __version__
from hwlearn.errors import HwlearnError

COMMANDS = ["solve", "gradcheck", "train", "run", "runs", "show", "export", "reproduce", "bench", "virtual-bench",
            "gui"]


class Parser(argparse.ArgumentParser):
    """argparse, but a value such as ``-0.1,0.2`` or ``-1e-3`` is a value, not an unknown option:
    argparse's own test only knows single plain numbers like ``-0.1``. Subparsers inherit it."""

    NUMBERS = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)*$")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = self.NUMBERS


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hwlearn", description="Train physical resistor networks in the loop.")
    parser.add_argument("--version", action="version", version=f"hwlearn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = __import__(f"hwlearn.cli.{name.replace('-', '_')}", fromlist=["add_parser"])
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except HwlearnError as exc:
        print(f"hwlearn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hwlearn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
