"""Partition a graph's training triples for distributed training with DistDGL.

    python pipelines/partition.py --graph synthetic-tiny --parts 1 --out parts/tiny
    python pipelines/partition.py --graph fb15k237img --source ../shared/datasets/fb15k237img \\
        --parts 4 --method metis --out parts/fb15k237img

Writes DIR/<graph>.json (DistDGL's partition config, the file trainers open), DIR/part<i>/ and
two files of ours beside them (<graph>.roam.json, <graph>.ids.pt), then prints entities and
triples per partition and the edge cut. Standalone training needs --parts 1; see
docs/distributed-dgl.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _cli import Parser, positive_int, run_main
from roam_graph.cli._options import add_graph_source_flags
from roam_graph.graph.partition import METHODS, check_partition_request, partition_kg
from roam_graph.graph.prepare import PrepareOptions, prepare_graph


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(description=__doc__)
    add_graph_source_flags(parser)
    parser.add_argument("--parts", type=positive_int, required=True,
                        help="number of partitions (>= 1)")
    parser.add_argument("--method", choices=METHODS, default="metis",
                        help="node assignment: metis (few cut edges, default) or random")
    parser.add_argument("--out", type=Path, required=True, help="output folder, one per graph")
    parser.add_argument("--balance-edges", action="store_true",
                        help="METIS: balance train triples per partition, not only entities")
    parser.add_argument("--no-features", action="store_true",
                        help="leave the modality features out of the partitions")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_partition_request(args.graph, args.parts, args.out, args.method)  # fail before loading
    options = PrepareOptions(graph=args.graph, source=args.source, data_dir=args.data_dir,
                             text_encoder=args.text_encoder, format=args.format, seed=args.seed)
    kg = prepare_graph(options).kg
    summary = partition_kg(kg, args.graph, args.parts, args.out, args.method, options,
                           features=not args.no_features, balance_edges=args.balance_edges)
    print(summary.format_table())
    return 0


if __name__ == "__main__":
    run_main(main)
