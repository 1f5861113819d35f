"""Top-k tails or heads of a finished run, for one query or a file of them; or score triples.

    roam predict --run DIR --head e00042 --relation r03 --top 10      # one query, printed
    roam predict --run DIR --relation r03 --tail e00007               # its heads
    roam predict --run DIR --queries queries.tsv --out top10.tsv       # many queries, a table
    roam predict --run DIR --triples triples.csv --out scores.csv      # score given triples
    (python pipelines/predict.py ... is the same command)

A query file holds one query per line: "head<TAB>relation" (tail prediction), or three fields
with "?" at the end to predict ("?<TAB>r03<TAB>e00007"); .csv files are comma-separated; an
optional header line names the columns (head, relation, tail). A triple file holds
"head relation tail" lines. Every unknown name is reported with its line and nothing is written,
unless --skip-unknown predicts the rest. Tables (TSV, or CSV for .csv; stdout without --out) have
one row per query and rank: target, head, relation, tail, rank, score (the model's logit),
known (the split holding the triple, if any), and for ROAM the routed group and the head's
modality weights. Formats and columns: docs/api.md. The model is the run's selected checkpoint
(best.pt); a run interrupted before its first validation is read from last.pt, with a note.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from roam_graph.api.queries import TARGETS, NamedRow, read_rows
from roam_graph.api.trained import TrainedRun
from roam_graph.atomic import write_table
from roam_graph.cli._options import add_run_arguments, load
from roam_graph.cli._parsing import Parser, positive_int
from roam_graph.data.errors import DataError

SKIP_HINT = "--skip-unknown predicts the rest"


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    parser = Parser(prog=prog, description=__doc__)
    add_run_arguments(parser)
    parser.add_argument("--head", help="entity name: predict its tails (with --relation)")
    parser.add_argument("--tail", help="entity name: predict its heads (with --relation)")
    parser.add_argument("--relation", help="relation name (NAME^-1: reversed)")
    parser.add_argument("--queries", type=Path, help="TSV/CSV file of queries")
    parser.add_argument("--triples", type=Path, help="TSV/CSV file of triples to score")
    parser.add_argument("--target", choices=TARGETS,
                        help="what two-field query lines predict (default: tail)")
    parser.add_argument("--top", type=positive_int, default=10,
                        help="answers per query (>= 1, default 10)")
    parser.add_argument("--out", type=Path, help="table to write (.tsv, or .csv); "
                                                 "default: TSV on stdout")
    parser.add_argument("--skip-unknown", action="store_true",
                        help="predict the rows whose names are known, list the others")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    single = args.head is not None or args.tail is not None
    modes = [name for name, given in (("--head/--tail", single), ("--queries", args.queries),
                                      ("--triples", args.triples)) if given]
    if len(modes) != 1:
        raise DataError("give one of --head/--tail with --relation, --queries FILE or "
                        f"--triples FILE (got {', '.join(modes) or 'none'})")
    if single:
        return predict_one(args)
    rows = read_rows(args.queries or args.triples, target=args.target,
                     complete=args.triples is not None)
    run = load(args, log=lambda note: print(note, file=sys.stderr))  # stdout may be the table
    table = run.score_triples(rows, args.skip_unknown, SKIP_HINT) if args.triples else \
        run.predict(rows, args.top, args.skip_unknown, SKIP_HINT)
    skipped = table.attrs.get("skipped", [])
    if skipped:
        print(f"skipped {len(skipped)} row(s) with unknown names:\n  " + "\n  ".join(skipped),
              file=sys.stderr)
    if args.out is None:
        table.to_csv(sys.stdout, sep="\t", index=False, float_format="%.7g")
    else:
        write_table(args.out, table)
        print(f"{len(table)} rows -> {args.out}", file=sys.stderr)
    return 0


def predict_one(args: argparse.Namespace) -> int:
    """One query, printed for reading: its top answers and, for ROAM, the route."""
    if args.relation is None or (args.head is None) == (args.tail is None):
        raise DataError("one query needs --relation and exactly one of --head, --tail")
    run = load(args)
    row = NamedRow(0, args.head, args.relation, args.tail)
    table = run.predict([row], args.top, hint="check the spelling")
    print(f"({args.head or '?'}, {args.relation}, {args.tail or '?'}) — top {len(table)}")
    print(format_answers(table, run))
    return 0


def format_answers(table: pd.DataFrame, run: TrainedRun) -> str:
    target = table["target"].iloc[0]
    lines = []
    for record in table.itertuples(index=False):
        mark = f"  (known in {record.known})" if record.known else ""
        lines.append(f"{record.rank:>3}. {getattr(record, target):<40} {record.score:8.3f}{mark}")
    weights = [c for c in table.columns if c.startswith("weight_")]
    if "group" in table.columns:
        shares = ", ".join(f"{c.removeprefix('weight_')} {table[c].iloc[0]:.2f}" for c in weights)
        lines.append(f"routed to group {int(table['group'].iloc[0])} of "
                     f"{run.config.model.num_groups}; modality weights: {shares}")
    return "\n".join(lines)
