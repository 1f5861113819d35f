"""A suite's results as ``table.csv`` (one line per row, every figure) and ``table.md`` (the
paper's layout: metrics in %, mean ± std over runs, the paper's MRR for the same graph beside)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from roam_graph.atomic import write_table
from roam_graph.evaluation.metrics import HEADLINE_KEYS, TABLE_KEYS
from roam_graph.experiments.runner import ROUTING_FIGURES, RunRecord
from roam_graph.experiments.suites import Suite

PERCENT = set(TABLE_KEYS)
HEADERS = {"mrr": "MRR (%)", "hits@1": "Hit@1 (%)", "hits@3": "Hit@3 (%)",
           "hits@10": "Hit@10 (%)", "mr": "MR", "seconds_per_epoch": "Training (s/epoch)",
           "inference_seconds": "Inference (s)", "peak_memory_mb": "Peak memory (MB)",
           "routing_entropy": "Routing entropy (nats)", "oracle_agreement": "Oracle agreement",
           "routing_regret": "Regret (nats)", "relation_group_mi_bits": "MI(r; group) (bits)",
           "relation_group_mi_permuted_bits": "MI, r permuted (bits)"}
CSV_FIGURES = (*HEADLINE_KEYS, "seconds_per_epoch",
               "inference_seconds", "peak_memory_mb", "routing_entropy", "selected_epoch",
               *ROUTING_FIGURES)


def aggregate(suite: Suite, records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One dict per suite row that has runs: ``{label, runs, <figure>_mean, <figure>_std}``."""
    table = []
    for row in suite.rows:
        runs = [r for r in records if r.row == row.label]
        if not runs:
            continue
        entry: dict[str, Any] = {"label": row.label, "runs": len(runs)}
        for figure in CSV_FIGURES:
            values = [r.metrics[figure] for r in runs if not math.isnan(r.metrics[figure])]
            entry[f"{figure}_mean"] = statistics.fmean(values) if values else math.nan
            entry[f"{figure}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        table.append(entry)
    return table


def write_table_csv(path: Path, suite: Suite, graph: str, table: Sequence[dict[str, Any]]
                    ) -> None:
    paper = {row.label: row.paper.get(graph, math.nan) for row in suite.rows}
    columns = ["suite", "graph", "label", "runs",
               *[f"{f}_{s}" for f in CSV_FIGURES for s in ("mean", "std")], "paper_mrr"]
    frame = pd.DataFrame([{"suite": suite.name, "graph": graph, **entry,
                           "paper_mrr": paper.get(entry["label"], math.nan)} for entry in table],
                         columns=columns)
    write_table(path, frame)


def cell(entry: dict[str, Any], figure: str) -> str:
    mean, std = entry[f"{figure}_mean"], entry[f"{figure}_std"]
    if math.isnan(mean):
        return "–"
    scale = 100.0 if figure in PERCENT else 1.0
    digits = 0 if figure == "peak_memory_mb" else 2
    text = f"{mean * scale:.{digits}f}"
    return f"{text} ± {std * scale:.{digits}f}" if entry["runs"] > 1 else text


def table_markdown(suite: Suite, graph: str, table: Sequence[dict[str, Any]],
                   skipped: dict[str, str], budget: str) -> str:
    figures = [*suite.metrics, *suite.extra]
    has_paper = any(graph in row.paper for row in suite.rows)
    header = ["Variant", *[HEADERS[f] for f in figures]] + (["Paper MRR (%)"] if has_paper else [])
    lines = [f"# Suite `{suite.name}` on {graph}: the paper's {suite.source}", "",
             f"Budget: {budget}. Test metrics at the epoch selected on validation MRR (filtered, "
             "realistic ties); mean ± sample std over runs when runs > 1.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    entries = {entry["label"]: entry for entry in table}
    for row in suite.rows:                      # the paper's row order, skipped rows included
        if row.label in entries:
            cells = [row.label, *[cell(entries[row.label], f) for f in figures]]
        elif row.label in skipped:
            cells = [row.label, *["n/a"] * len(figures)]
        else:
            continue
        if has_paper:
            value = row.paper.get(graph)
            cells.append(f"{value:.2f}" if value is not None else "–")
        lines.append("| " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", "Not run: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "."]
    return "\n".join(lines) + "\n"
