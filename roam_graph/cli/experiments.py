"""The paper's experiments, one command each: tables (markdown + CSV) and figures (PNG).

    python pipelines/experiments.py --suite regor --graph synthetic --epochs 2 --out /tmp/e
    python pipelines/experiments.py --suite main --graph db15k --source ../shared/datasets/db15k \\
        --epochs 20 --dim 64 --runs 3
    python pipelines/experiments.py --list

Suites: main (Table 2 + efficiency, Fig. 4-6), moseg (Table 3), regor (Table 4), modalities
(Table 5), components (Table 9), solvers (Table 10), noise (Table 11), relation (Table 12),
groups (Fig. 2). Settings come from configs/<graph>.yaml (Table 13) with the flags applied to
every row. Runs go to OUT/runs/<row>/seed<S>; running the same command again reuses finished runs
and resumes unfinished ones. OUT gets table.md, table.csv and the suite's PNG figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from roam_graph.cli._options import (
    SHARED_FLAGS,
    add_configuration_arguments,
    add_set_option,
    base_config,
    command_overrides,
)
from roam_graph.cli._parsing import Parser, positive_int
from roam_graph.experiments.report import write_suite_outputs
from roam_graph.experiments.runner import run_suite
from roam_graph.experiments.suites import SUITES, get_suite
from roam_graph.graph.prepare import prepare_graph
from roam_graph.training.config import prepare_options

#: The flags of this command that set configuration keys (``_options.CONFIG_FLAGS``).
FLAGS = (*SHARED_FLAGS, "--lr", "--loss")


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    p = Parser(prog=prog, description=__doc__)
    p.add_argument("--suite", choices=list(SUITES), help="which table or figure")
    p.add_argument("--list", action="store_true", help="list the suites and their rows")
    add_configuration_arguments(p, FLAGS)
    p.add_argument("--runs", type=positive_int, default=1,
                   help="seeds S..S+N-1 per row (mean ± std)")
    add_set_option(p, "any config key for every row, e.g. --set model.expert_form=residual "
                      "(keys: docs/configuration.md)")
    p.add_argument("--rows", help="comma-separated row labels or slugs (as --list shows "
                   "them as folder names; use the slug for a label with a comma) to train "
                   "(default: all); finished runs of the other rows still enter the table")
    p.add_argument("--out", type=Path, help="default runs/<graph>/experiments/<suite>")
    p.add_argument("--in-process", action="store_true",
                   help="train in this process (faster start; peak memory is then not per run)")
    return p.parse_args(argv)


def overrides(args: argparse.Namespace) -> tuple[dict[str, object], dict[str, str]]:
    """The config keys the flags and ``--set`` items set, and the flag or item behind each
    (errors name it)."""
    return command_overrides(args, FLAGS, args.set)


def list_suites() -> str:
    lines = []
    for suite in SUITES.values():
        lines.append(f"{suite.name:<11} {suite.source}")
        lines += [f"{'':<11}   - {row.label}" for row in suite.rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    if args.list:
        print(list_suites())
        return 0
    if args.suite is None:
        print("error: --suite is required (or --list)", file=sys.stderr)
        return 2
    suite = get_suite(args.suite)
    base = base_config(args, *overrides(args))
    started = time.perf_counter()
    kg = prepare_graph(prepare_options(base, download=not args.no_download)).kg
    print(repr(kg))
    out = args.out or Path("runs") / base.graph / "experiments" / suite.name
    only = [name.strip() for name in args.rows.split(",")] if args.rows else None
    records, skipped = run_suite(suite, base, kg, out, args.runs, isolate=not args.in_process,
                                 only=only)
    written = write_suite_outputs(suite, base, kg, records, skipped, out, args.runs)
    print((out / "table.md").read_text(encoding="utf-8"))
    print("files: " + ", ".join(str(p) for p in written))
    print(f"finished in {time.perf_counter() - started:.0f} s")
    return 0
