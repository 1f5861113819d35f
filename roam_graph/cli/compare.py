"""Paired significance test of two runs on per-relation metrics (the paper's Table 7).

    python pipelines/compare.py runs/db15k/roam-full/seed0 runs/db15k/momok-full/seed0

Each folder holds a metrics.json (or run-*/metrics.json of repeated runs, averaged per
relation). The Wilcoxon signed-rank test (two-sided) pairs the relations present in both runs.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from scipy.stats import wilcoxon

from roam_graph.cli._parsing import Parser
from roam_graph.data.errors import DataError
from roam_graph.data.textfile import read_text

METRICS = ("mrr", "hits@1")


def per_relation(folder: Path) -> dict[str, dict[str, float]]:
    files = [folder / "metrics.json"] if (folder / "metrics.json").is_file() \
        else sorted(folder.glob("run-*/metrics.json"))
    if not files:
        raise DataError(f"{folder}: no metrics.json (nor run-*/metrics.json) here")
    runs = [_per_relation_of(path) for path in files]
    shared = set.intersection(*(set(run) for run in runs))
    return {relation: {m: statistics.fmean(run[relation][m] for run in runs) for m in METRICS}
            for relation in shared}


def _per_relation_of(path: Path) -> dict[str, dict[str, float]]:
    try:
        per_relation = json.loads(read_text(path)).get("per_relation")
    except (ValueError, AttributeError):
        per_relation = None
    if not isinstance(per_relation, dict) or not all(
            isinstance(v, dict) and all(m in v for m in METRICS) for v in per_relation.values()):
        raise DataError(f"{path}: not a metrics.json of run.py (no per_relation "
                        f"{'/'.join(METRICS)})")
    return per_relation


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = Parser(prog=prog, description=__doc__)
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    args = parser.parse_args(argv)
    a, b = per_relation(args.run_a), per_relation(args.run_b)
    relations = sorted(set(a) & set(b))
    if len(relations) < 2:
        raise DataError(f"only {len(relations)} relation(s) in common: nothing to test")
    print(f"{len(relations)} relations in common; Wilcoxon signed-rank, two-sided")
    print(f"{'metric':<8} | {'A (mean)':>9} | {'B (mean)':>9} | p-value")
    for metric in METRICS:
        xs, ys = [a[r][metric] for r in relations], [b[r][metric] for r in relations]
        differences = [x - y for x, y in zip(xs, ys, strict=True)]
        p = 1.0 if not any(differences) else float(wilcoxon(xs, ys).pvalue)
        print(f"{metric:<8} | {statistics.fmean(xs):9.4f} | {statistics.fmean(ys):9.4f} | {p:.2e}")
    return 0
