"""Compare training samplers: negative-sampling strategies, negatives per positive, 1-N vs
negative sampling, and training on sampled subgraphs (edge fraction, neighbourhoods).

    python pipelines/sample.py                                   # synthetic graph, a few minutes
    python pipelines/sample.py --graph synthetic --out /tmp/s --groups regime,subgraph
    python pipelines/sample.py --graph db15k --source DIR --epochs 2 --dim 32

Each configuration is one training run in OUT/runs/<name> (finished runs are not repeated, so an
interrupted study continues where it stopped). Results: OUT/sampling.csv (one row per
configuration: test MRR, Hits@10, validation MRR, training seconds, ...), OUT/sampling.md and
OUT/sampling.png (MRR and Hits@10 against training time). The model defaults to TuckER: the
question is the sampler, and a fast structure-only model keeps the study short (--model roam
runs it with ROAM). Configurations and parameters: docs/sampling.md ("Sampling experiments").
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from roam_graph.cli._options import (
    GRAPH_FLAGS,
    add_config_flag,
    add_config_flags,
    add_download_flag,
    add_graph_flag,
    flag_origins,
)
from roam_graph.cli._parsing import Parser
from roam_graph.experiments.sampling_study import GROUPS, run_study, select, study_config
from roam_graph.graph.prepare import prepare_graph
from roam_graph.training.config import prepare_options

#: The flags of this command that set configuration keys (errors name the flag).
FLAGS = (*GRAPH_FLAGS, "--seed", "--model", "--dim", "--epochs", "--lr", "--batch-size",
         "--negatives")


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    p = Parser(prog=prog, description=__doc__)
    add_graph_flag(p, default="synthetic")
    add_config_flags(p, "--source", "--format", "--data-dir")
    p.add_argument("--out", type=Path, help="output folder (default runs/<graph>/sampling)")
    p.add_argument("--groups", help=f"comma-separated subset of {','.join(GROUPS)} (default: all)")
    add_config_flag(p, "--model", default="tucker", help="default: tucker")
    add_config_flag(p, "--text-encoder",
                    help="default: the graph's config (none for tucker, which reads no text)")
    add_config_flag(p, "--epochs", default=8, help="epochs per configuration (default 8)")
    add_config_flag(p, "--dim", default=64, help="every model width (default 64)")
    add_config_flag(p, "--lr", default=0.01, help="default 0.01")
    add_config_flag(p, "--batch-size", default=256, help="default 256")
    add_config_flag(p, "--negatives", default=16,
                    help="k of the base configuration and of the strategy group (default 16)")
    add_config_flag(p, "--seed", default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    add_download_flag(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    groups = [g.strip() for g in (args.groups or "").split(",") if g.strip()] or None
    configurations = select(groups)
    base = study_config(args.graph, model=args.model, dim=args.dim, epochs=args.epochs,
                        lr=args.lr, batch_size=args.batch_size, negatives=args.negatives,
                        seed=args.seed, source=str(args.source) if args.source else None,
                        data_dir=str(args.data_dir) if args.data_dir else None,
                        text_encoder=args.text_encoder, graph_format=args.format,
                        origins=flag_origins(FLAGS))
    started = time.perf_counter()
    kg = prepare_graph(prepare_options(base, download=not args.no_download)).kg
    print(repr(kg))
    out = args.out or Path("runs") / base.graph / "sampling"
    print(f"{len(configurations)} configurations, {base.model.model} d={base.model.dim}, "
          f"{base.training.epochs} epochs each; out {out}")
    rows = run_study(base, kg, out, configurations, train_log=None if args.quiet else print,
                     progress=not args.quiet)
    best = max(rows, key=lambda r: r["test_mrr"])
    print(f"best test MRR: {best['name']} ({best['group']}) {best['test_mrr']:.4f}")
    print(f"finished in {time.perf_counter() - started:.0f} s; {out / 'sampling.csv'}, "
          f"{out / 'sampling.md'}, {out / 'sampling.png'}")
    return 0
