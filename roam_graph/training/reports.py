"""Result files of a run: ``history.csv``, ``metrics.json``, ``ranks.pt``, ``config.json``, and
the ``summary.md`` / ``summary.json`` of repeated runs (mean +- std, the paper's Table 2 layout).
Every file is written atomically."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from roam_graph.atomic import atomic_path, write_json
from roam_graph.evaluation import EvaluationResult

HEADLINE_KEYS = ("mrr", "mr", "hits@1", "hits@3", "hits@10")


def write_history(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as temporary:
        temporary.write_text(buffer.getvalue(), encoding="utf-8")


def write_config(out: Path, config: Any) -> None:
    """``config.json``, the resolved configuration: written when a run starts (and again when it
    is resumed), so that an interrupted run folder can be inspected (``predict.py --run``)."""
    write_json(out / "config.json", config.to_dict())


def write_metrics(out: Path, test: EvaluationResult, relation_names: Sequence[str],
                  progress: dict[str, Any]) -> None:
    """``metrics.json`` (test at the selected epoch + validation there) and ``ranks.pt``
    (per-query test ranks for significance tests)."""
    payload = test.to_json(relation_names)
    payload["validation"] = progress.get("best_validation", {})
    payload["selected_epoch"] = progress.get("best_epoch")
    payload["stopped_early"] = progress.get("stopped_early", False)
    if "routing" in progress:  # routing diagnostics at the selected epoch (validation queries)
        payload["routing"] = progress["routing"]
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
    columns = ("mrr", "hits@1", "hits@3", "hits@10")

    def cell(key: str) -> str:
        return f"{100 * summary[key]['mean']:.2f} ± {100 * summary[key]['std']:.2f}"

    runs = summary["mrr"]["runs"]
    return "\n".join([
        f"Test results over {runs} run(s) (mean ± std, %, realistic tie handling, filtered).", "",
        "| model | MRR | Hits@1 | Hits@3 | Hits@10 |", "|---|---|---|---|---|",
        f"| {title} | " + " | ".join(cell(k) for k in columns) + " |", ""])
