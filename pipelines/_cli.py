"""Shared bits of the command-line entry points: a friendly import and error reporting."""

from __future__ import annotations

import sys
from collections.abc import Callable

try:
    from roam_graph.data.errors import DataError
except ImportError as error:  # not installed, or the wrong stack (the guard names versions)
    sys.exit(f"error: {error}\nSet up with `make test` or `pip install -e .` (see README).")


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run ``main``; user errors (bad data, bad options) end with one clear line, exit code 2."""
    sys.stdout.reconfigure(line_buffering=True)  # progress lines appear at once in logs too
    try:
        sys.exit(main(argv))
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
