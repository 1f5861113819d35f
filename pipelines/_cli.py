"""Shared bits of the command-line entry points: a friendly import, an argument parser whose
errors are one line, checked integer options, and error reporting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

try:
    from roam_graph.data.errors import DataError, quote, shorten
except ImportError as error:  # not installed, or the wrong stack (the guard names versions)
    sys.exit(f"error: {error}\nSet up with `make test` or `pip install -e .` (see README).")

#: A message longer than this is cut: no user error needs more, and a runaway one must not
#: flood the terminal (values inside messages are quoted to 200 characters already).
MESSAGE_LIMIT = 4000


class Parser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line (no usage block): the flag, the problem and a
    pointer to ``--help``, exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {shorten(message, MESSAGE_LIMIT)} (see {self.prog} --help)",
              file=sys.stderr)
        sys.exit(2)


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {quote(text)}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """``type=`` of an integer option that must be >= 1 (epochs, sizes, counts)."""
    return _integer(text, 1)


def non_negative_int(text: str) -> int:
    """``type=`` of an integer option that must be >= 0 (seeds)."""
    return _integer(text, 0)


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run ``main``; user errors (bad data, bad options) end with one clear line, exit code 2."""
    sys.stdout.reconfigure(line_buffering=True)  # progress lines appear at once in logs too
    try:
        sys.exit(main(argv))
    except DataError as error:
        print(f"error: {shorten(str(error), MESSAGE_LIMIT)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
