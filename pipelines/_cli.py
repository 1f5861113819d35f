"""Shared bits of the scripts in pipelines/: a friendly import, the one-line-error argument
parser with checked integer options, and error reporting.

Each script but partition.py and train_dist.py is a thin wrapper around
``roam_graph.cli.<name>.main``, the function the ``roam`` command runs too, so
``python pipelines/run.py ...`` and ``roam run ...`` behave identically.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

try:
    from roam_graph.cli import run_command
    from roam_graph.cli._parsing import Parser, non_negative_int, positive_int
except ImportError as error:  # not installed, or the wrong stack (the guard names versions)
    sys.exit(f"error: {error}\nSet up with `make test` or `pip install -e .` (see README).")

__all__ = ["Parser", "non_negative_int", "positive_int", "run_main"]


def run_main(main: Callable[..., int], argv: list[str] | None = None) -> None:
    """Run ``main``; user errors (bad data, bad options) end with one clear line, exit code 2."""
    sys.stdout.reconfigure(line_buffering=True)  # progress lines appear at once in logs too
    sys.exit(run_command(main, argv))
