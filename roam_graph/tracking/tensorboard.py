"""TensorBoard backend: event files in ``<run>/tensorboard/`` (``tensorboard --logdir runs``).

Uses ``torch.utils.tensorboard``, which needs the ``tensorboard`` package (extra
``roam-graph[tensorboard]``); steps are epochs, so curves of resumed runs continue in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from roam_graph.evaluation.metrics import HEADLINE_KEYS
from roam_graph.tracking import scalars

FOLDER = "tensorboard"


class TensorBoardTracker:
    def __init__(self, folder: Path) -> None:
        self.writer = SummaryWriter(log_dir=str(folder))

    def log_evaluation(self, epoch: int, row: Mapping[str, Any]) -> None:
        for tag, value in scalars(row).items():
            self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    def log_test(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        for key in HEADLINE_KEYS:
            if key in metrics:
                self.writer.add_scalar(f"test/{key}", float(metrics[key]), epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def make(out: Path) -> TensorBoardTracker:
    return TensorBoardTracker(out / FOLDER)
