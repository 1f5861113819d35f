"""Train link prediction on a DistDGL-partitioned graph (DistGraph + DistEmbedding).

    python pipelines/partition.py --graph synthetic-tiny --parts 1 --out parts/tiny
    python pipelines/train_dist.py --partition-config parts/tiny/synthetic-tiny.json

Without DGL_DIST_MODE (or with DGL_DIST_MODE=standalone) it runs in one process with no server
and needs a 1-partition config. With servers and several trainers it is started by dgl's launch
tool (or by hand, setting DGL_ROLE, DGL_SERVER_ID, ...): the same command then runs as a server
or a trainer; see docs/distributed-dgl.md. Writes --out/metrics.json (filtered MRR on valid and
test, the training history); default out: runs/<graph>/dist-<scorer>/seed<S>.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _cli import Parser, non_negative_int, positive_int, run_main
from roam_graph.data.errors import DataError
from roam_graph.data.textfile import read_text
from roam_graph.graph import dgl_distributed
from roam_graph.graph.partition import prepare_options, read_sidecar
from roam_graph.graph.prepare import prepare_graph
from roam_graph.training.config import width_overrides
from roam_graph.training.dist_dgl import (
    DEFAULTS,
    SCORERS,
    DistOptions,
    check_mode,
    dist_config,
    run_dist_training,
)

OPTIONS = DistOptions()
#: The config keys this command's flags set (errors name the flag).
FLAGS = {"training.epochs": "--epochs", "training.batch_size": "--batch-size",
         **dict.fromkeys(width_overrides(None), "--dim"), "training.negatives": "--negatives",
         "training.lr": "--lr", "evaluation.batch_size": "--eval-batch-size", "seed": "--seed"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(description=__doc__)
    p.add_argument("--partition-config", type=Path, required=True,
                   help="DIR/<graph>.json written by pipelines/partition.py")
    p.add_argument("--ip-config", type=Path, default=os.environ.get("DGL_IP_CONFIG"),
                   help="servers' 'IP PORT' lines (distributed mode; default $DGL_IP_CONFIG)")
    p.add_argument("--data-dir", type=Path, help="cache folder of the prepared graph "
                                                 "(default: the one used to partition)")
    p.add_argument("--scorer", choices=SCORERS, default=OPTIONS.scorer)
    p.add_argument("--epochs", type=positive_int, default=DEFAULTS["training.epochs"])
    p.add_argument("--batch-size", type=positive_int, default=DEFAULTS["training.batch_size"])
    p.add_argument("--dim", type=positive_int, default=DEFAULTS["model.dim"])
    p.add_argument("--negatives", type=positive_int, default=DEFAULTS["training.negatives"])
    p.add_argument("--lr", type=float, default=DEFAULTS["training.lr"],
                   help="relations and scorer (Adam)")
    p.add_argument("--sparse-lr", type=float, default=OPTIONS.sparse_lr,
                   help="entity DistEmbedding (DistDGL SparseAdam)")
    p.add_argument("--eval-batch-size", type=positive_int,
                   default=DEFAULTS["evaluation.batch_size"])
    p.add_argument("--seed", type=non_negative_int, default=DEFAULTS["seed"])
    p.add_argument("--out", type=Path, help="output folder")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = DistOptions(args.scorer, args.sparse_lr)
    options.check()
    sidecar = read_sidecar(args.partition_config)
    try:
        meta = json.loads(read_text(args.partition_config))
        num_parts, graph_name = int(meta["num_parts"]), str(meta["graph_name"])
    except (ValueError, TypeError, KeyError):
        raise DataError(f"--partition-config {args.partition_config}: not a DistDGL partition "
                        "config (JSON with num_parts and graph_name); make it with "
                        "pipelines/partition.py") from None
    check_mode(num_parts, args.partition_config)
    if not dgl_distributed.is_standalone() and args.ip_config is None:
        raise DataError("distributed mode needs --ip-config (or $DGL_IP_CONFIG)")
    if args.ip_config is not None and not dgl_distributed.is_standalone() \
            and not args.ip_config.is_file():
        raise DataError(f"--ip-config {args.ip_config}: no such file")
    graph = prepare_options(sidecar, args.data_dir)
    config = dist_config(graph, {
        "training.epochs": args.epochs, "training.batch_size": args.batch_size,
        "model.dim": args.dim, "training.negatives": args.negatives, "training.lr": args.lr,
        "evaluation.batch_size": args.eval_batch_size, "seed": args.seed}, origins=FLAGS)
    out = args.out or Path("runs") / graph.graph / f"dist-{options.scorer}" / f"seed{config.seed}"
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file, not a folder")
    dgl_distributed.initialize(args.ip_config)  # a server process serves here, then exits
    kg = prepare_graph(graph, log=lambda _: None).kg
    expected = sidecar["summary"]["num_triples"]
    if len(kg.triples("train")) != expected:
        raise DataError(f"--partition-config {args.partition_config}: partitioned "
                        f"{expected} train triples, the prepared graph has "
                        f"{len(kg.triples('train'))}; re-run pipelines/partition.py")
    run_dist_training(config, options, graph_name, args.partition_config, kg, out)
    return 0


if __name__ == "__main__":
    run_main(main)
