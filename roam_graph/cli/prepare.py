"""Turn a benchmark's files (or your own graph's) into a cached multimodal DGL graph.

    python pipelines/prepare.py --graph db15k --source ../shared/datasets/db15k --stats
    python pipelines/prepare.py --graph fb15k237img --source DIR --text-encoder minilm
    python pipelines/prepare.py --graph synthetic --stats
    python pipelines/prepare.py --graph mygraph --source DIR   # generic TSV, docs/data-formats.md
"""

from __future__ import annotations

import argparse
import time

from roam_graph.cli._options import add_graph_source_flags
from roam_graph.cli._parsing import Parser
from roam_graph.data.stats import graph_statistics
from roam_graph.graph.prepare import PrepareOptions, prepare_graph


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    parser = Parser(prog=prog, description=__doc__)
    add_graph_source_flags(parser)
    parser.add_argument("--download", action="store_true",
                        help="fetch the published files and verify their checksums")
    parser.add_argument("--stats", action="store_true", help="print the graph's statistics")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    started = time.perf_counter()
    prepared = prepare_graph(PrepareOptions(
        graph=args.graph, source=args.source, data_dir=args.data_dir,
        text_encoder=args.text_encoder, download=args.download, format=args.format,
        seed=args.seed))
    seconds = time.perf_counter() - started
    state = "built" if prepared.rebuilt else "loaded from cache"
    print(f"{prepared.kg!r}\n{state} in {seconds:.2f} s: {prepared.folder}")
    if args.stats:
        print(graph_statistics(prepared.kg.to_data()).format_table())
    return 0
