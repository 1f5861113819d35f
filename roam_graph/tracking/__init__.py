"""Experiment tracking: what a run reports at each validation, sent beside ``history.csv``.

A tracker receives every row of ``history.csv`` that holds a validation (epoch, losses,
throughput, validation metrics and, for ROAM, the routing diagnostics), once the run's files of
that epoch are written, and the test metrics at the end. It
is an interface so that a backend is one module: TensorBoard is ``tracking/tensorboard.py``;
MLflow or Weights & Biases would be ``tracking/<name>.py`` with a ``make(out)`` function, plus
one line in ``BACKENDS``. Backends are optional extras, imported only when asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from roam_graph.data.errors import DataError

#: Tracker name -> (module under roam_graph.tracking, pip extra that provides it).
BACKENDS: dict[str, tuple[str, str]] = {"tensorboard": ("tensorboard", "tensorboard")}
TRACKERS: tuple[str, ...] = ("none", *BACKENDS)


class Tracker(Protocol):
    def log_evaluation(self, epoch: int, row: Mapping[str, Any]) -> None:
        """One ``history.csv`` row, after the validation at ``epoch``."""

    def log_test(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Headline test metrics of the selected model (``epoch``: the selected one)."""

    def close(self) -> None:
        """Flush and release; called once, also when training fails."""


def make_tracker(name: str | None, out: Path) -> Tracker | None:
    """The tracker called ``name`` writing under ``out`` (None for ``none``)."""
    if name in (None, "none"):
        return None
    if name not in BACKENDS:
        raise DataError(f"--tracker {name!r}: choose one of {', '.join(TRACKERS)}")
    module, extra = BACKENDS[name]
    try:
        backend = importlib.import_module(f"roam_graph.tracking.{module}")
        return backend.make(Path(out))
    except ImportError as error:
        raise DataError(f"--tracker {name} needs a package that is not installed ({error}); "
                        f"install it with pip install 'roam-graph[{extra}]'") from None


@contextmanager
def tracking(name: str | None, out: Path) -> Iterator[Tracker | None]:
    """``make_tracker`` for a ``with`` block that closes it, also when training fails."""
    tracker = make_tracker(name, out)
    try:
        yield tracker
    finally:
        if tracker is not None:
            tracker.close()


def scalar_tag(column: str) -> str:
    """TensorBoard-style tag of a ``history.csv`` column: ``loss/triple``, ``valid/mrr``,
    ``time/seconds``, ``routing/<diagnostic>``."""
    if column.startswith("loss_"):
        return "loss/" + column.removeprefix("loss_")
    if column in ("seconds", "valid_seconds", "queries_per_second", "peak_memory_mb"):
        return "time/" + column
    if column.startswith("valid_"):
        return "valid/" + column.removeprefix("valid_")
    return "routing/" + column


def scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The numeric columns of a row (not ``epoch``), under their tags."""
    return {scalar_tag(k): float(v) for k, v in row.items()
            if k != "epoch" and isinstance(v, int | float) and not isinstance(v, bool)}
