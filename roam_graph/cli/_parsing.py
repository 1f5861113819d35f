"""The argument parser of every command (``roam <command>``, pipelines/*.py): errors are one
line, and integer options are checked when parsed."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from roam_graph.data.errors import quote, shorten

#: A message longer than this is cut: no user error needs more, and a runaway one must not
#: flood the terminal (values inside messages are quoted to 200 characters already).
MESSAGE_LIMIT = 4000


class Parser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line (no usage block): the flag, the problem and a
    pointer to ``--help``, exit code 2. The description (a command's docstring) is shown as
    written."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(**kwargs)

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
