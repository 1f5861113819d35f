"""Where a run stands: early stopping on validation MRR (its own object, as PyKEEN keeps it) and
the progress a checkpoint saves and a resumed run continues from (history, selection, routing).

Both are typed here and turned into plain values only at the edge (``to_state`` /
``from_state``), because checkpoints are read with ``torch.load(weights_only=True)``, which
accepts plain containers only. The checkpoint layout is that of every earlier release, so their
runs stay resumable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EarlyStopping:
    """Model selection on validation MRR only: the best evaluation so far, and a stop after
    ``patience`` evaluations in a row without a better MRR."""
    patience: int
    best_mrr: float = -math.inf
    best_epoch: int = 0
    bad_evals: int = 0
    stopped: bool = False
    best_validation: dict[str, float] = field(default_factory=dict)

    def observe(self, epoch: int, validation: Mapping[str, float]) -> bool:
        """Record the validation metrics of ``epoch``; True when they are the best so far (the
        caller then keeps this epoch's model as the selected one)."""
        if validation["mrr"] > self.best_mrr:
            self.best_mrr, self.best_epoch, self.bad_evals = validation["mrr"], epoch, 0
            self.best_validation = dict(validation)
            return True
        self.bad_evals += 1
        if self.bad_evals >= self.patience:
            self.stopped = True
        return False


@dataclass
class TrainingProgress:
    """Everything about a run's past that its checkpoints keep besides tensors.

    ``config``: the resolved configuration (a resumed run must match it); ``history``: one row
    per epoch (history.csv); ``routing_selection``: the options the diagnostic queries took at
    the last validation (to count changes); ``routing``: the selected model's diagnostics (set
    after training, for metrics.json)."""
    stopping: EarlyStopping
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    routing_selection: list[int] | None = None
    routing: dict[str, float] | None = None

    @property
    def last_epoch(self) -> int:
        return int(self.history[-1]["epoch"]) if self.history else 0

    def to_state(self) -> dict[str, Any]:
        """Plain values, in the checkpoint layout."""
        stopping = self.stopping
        state: dict[str, Any] = {"best_mrr": stopping.best_mrr, "best_epoch": stopping.best_epoch,
                                 "bad_evals": stopping.bad_evals, "history": self.history,
                                 "stopped_early": stopping.stopped, "config": self.config}
        if stopping.best_validation:
            state["best_validation"] = stopping.best_validation
        if self.routing_selection is not None:
            state["routing_selection"] = self.routing_selection
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any], patience: int) -> TrainingProgress:
        """The progress a checkpoint saved; ``patience`` is the current setting (it may change
        on ``--resume``)."""
        stopping = EarlyStopping(patience, state["best_mrr"], state["best_epoch"],
                                 state["bad_evals"], state["stopped_early"],
                                 dict(state.get("best_validation", {})))
        return cls(stopping, dict(state["config"]), list(state["history"]),
                   state.get("routing_selection"))
