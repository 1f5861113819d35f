"""Paired significance test of two runs on per-relation metrics (the paper's Table 7).

    python pipelines/compare.py runs/db15k/roam-full/seed0 runs/db15k/momok-full/seed0

Each folder holds a metrics.json (or run-*/metrics.json of repeated runs, averaged per
relation). The Wilcoxon signed-rank test (two-sided) pairs the relations present in both runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from scipy.stats import wilcoxon

from roam_graph.data.errors import DataError

METRICS = ("mrr", "hits@1")


def per_relation(folder: Path) -> dict[str, dict[str, float]]:
    files = [folder / "metrics.json"] if (folder / "metrics.json").is_file() \
        else sorted(folder.glob("run-*/metrics.json"))
    if not files:
        raise DataError(f"{folder}: no metrics.json (nor run-*/metrics.json) here")
    runs = [json.loads(path.read_text(encoding="utf-8"))["per_relation"] for path in files]
    shared = set.intersection(*(set(run) for run in runs))
    return {relation: {m: statistics.fmean(run[relation][m] for run in runs) for m in METRICS}
            for relation in shared}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
