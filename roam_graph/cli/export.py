"""Write a finished run's embeddings: entity and relation tables, their names, the config.

    roam export --run runs/synthetic/roam-full/seed0 --out emb/
    roam export --run DIR --out emb-tsv/ --format tsv      # for the TensorBoard projector

Layout (DGL-KE's): <graph>_<model>_entity.npy, <graph>_<model>_relation.npy (relations, then
their reciprocals NAME^-1), for ROAM <graph>_<model>_entity_group<k>.npy (each entity fused in
expert group k), entities.tsv / relations.tsv ("id<TAB>name"), config.json, and embeddings.json
describing each file. The folder appears complete or not at all. Details: docs/api.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from roam_graph.api.export import FORMATS
from roam_graph.cli._options import add_run_arguments, load
from roam_graph.cli._parsing import Parser


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    parser = Parser(prog=prog, description=__doc__)
    add_run_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="folder to create")
    parser.add_argument("--format", choices=FORMATS, default="npy",
                        help="npy (default) or tsv (tab-separated vectors + metadata)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out if it exists (only once the new export is complete)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    run = load(args)
    files = run.export_embeddings(args.out, args.format, args.overwrite)
    print(f"{run!r}: {len(files)} files in {args.out}")
    for path in files:
        print(f"  {path.name}")
    return 0
