"""Result files of a run: ``history.csv``, ``metrics.json``, ``ranks.pt``, ``config.json``, and
the ``summary.md`` / ``summary.json`` of repeated runs (mean +- std, the paper's Table 2 layout).
Every file is written atomically."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from roam_graph.atomic import atomic_path, write_json, write_table
from roam_graph.evaluation import EvaluationResult
from roam_graph.evaluation.metrics import HEADLINE_KEYS, TABLE_KEYS
from roam_graph.training.progress import TrainingProgress


def write_history(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``history.csv``: one row per epoch; columns in order of first appearance (validation and
    ROAM's routing columns join at the first evaluation), a value a row lacks (validation at an
    epoch not evaluated) is left empty."""
    write_table(path, pd.DataFrame(list(rows)))


def read_history(path: Path) -> list[dict[str, float]]:
    """The rows of a ``history.csv`` as floats, empty cells left out ([] if there is none)."""
    if not Path(path).is_file():
        return []
    return [{k: float(v) for k, v in row.items() if not pd.isna(v)}
            for row in pd.read_csv(path).to_dict("records")]


def write_config(out: Path, config: Any) -> None:
    """``config.json``, the resolved configuration: written when a run starts (and again when it
    is resumed), so that an interrupted run folder can be inspected (``predict.py --run``)."""
    write_json(out / "config.json", config.to_dict())


def write_metrics(out: Path, test: EvaluationResult, relation_names: Sequence[str],
                  progress: TrainingProgress) -> None:
    """``metrics.json`` (test at the selected epoch + validation there) and ``ranks.pt``
    (per-query test ranks for significance tests)."""
    payload = test.to_json(relation_names)
    payload["validation"] = progress.stopping.best_validation
    payload["selected_epoch"] = progress.stopping.best_epoch
    payload["stopped_early"] = progress.stopping.stopped
    if progress.routing is not None:  # diagnostics at the selected epoch (validation queries)
        payload["routing"] = progress.routing
    write_json(out / "metrics.json", payload)
    with atomic_path(out / "ranks.pt") as temporary:
        torch.save({"relations": test.relations, "ranks": test.ranks}, temporary)


def summarize_runs(metrics: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of the headline test metrics over runs."""
    summary = {}
    for key in HEADLINE_KEYS:
        values = [m[key] for m in metrics]
        summary[key] = {"mean": statistics.fmean(values),
                        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "runs": len(values)}
    return summary


def summary_markdown(title: str, summary: dict[str, dict[str, float]]) -> str:
    """One row in the layout of the paper's Table 2: MRR / Hits@1 / Hits@3 / Hits@10 in %."""
    def cell(key: str) -> str:
        return f"{100 * summary[key]['mean']:.2f} ± {100 * summary[key]['std']:.2f}"

    runs = summary["mrr"]["runs"]
    return "\n".join([
        f"Test results over {runs} run(s) (mean ± std, %, realistic tie handling, filtered).", "",
        "| model | MRR | Hits@1 | Hits@3 | Hits@10 |", "|---|---|---|---|---|",
        f"| {title} | " + " | ".join(cell(k) for k in TABLE_KEYS) + " |", ""])
