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

from roam_graph.cli._options import add_download_flag
from roam_graph.cli._parsing import Parser, non_negative_int, positive_int
from roam_graph.data.formats import FORMATS
from roam_graph.data.text import TEXT_ENCODERS
from roam_graph.experiments.sampling_study import GROUPS, run_study, select, study_config
from roam_graph.graph.prepare import prepare_graph
from roam_graph.model.config import MODELS
from roam_graph.training.config import prepare_options, width_overrides

#: The config keys this command's flags set (errors name the flag).
FLAGS = {"source": "--source", "format": "--format", "data_dir": "--data-dir",
         "text_encoder": "--text-encoder", "seed": "--seed", "model.model": "--model",
         **dict.fromkeys(width_overrides(None), "--dim"),
         "training.epochs": "--epochs", "training.lr": "--lr",
         "training.batch_size": "--batch-size", "training.negatives": "--negatives"}


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    p = Parser(prog=prog, description=__doc__)
    p.add_argument("--graph", default="synthetic", help="graph name (default: synthetic)")
    p.add_argument("--source", type=Path, help="folder with the graph's files")
    p.add_argument("--format", choices=FORMATS,
                   help="file format of a graph of your own (default tsv; docs/data-formats.md)")
    p.add_argument("--data-dir", type=Path, help="cache folder (default $ROAM_DATA_DIR or ./data)")
    p.add_argument("--out", type=Path, help="output folder (default runs/<graph>/sampling)")
    p.add_argument("--groups", help=f"comma-separated subset of {','.join(GROUPS)} (default: all)")
    p.add_argument("--model", choices=MODELS, default="tucker", help="default: tucker")
    p.add_argument("--text-encoder", choices=TEXT_ENCODERS,
                   help="default: the graph's config (none for tucker, which reads no text)")
    p.add_argument("--epochs", type=positive_int, default=8,
                   help="epochs per configuration (default 8)")
    p.add_argument("--dim", type=positive_int, default=64, help="every model width (default 64)")
    p.add_argument("--lr", type=float, default=0.01, help="default 0.01")
    p.add_argument("--batch-size", type=positive_int, default=256, help="default 256")
    p.add_argument("--negatives", type=positive_int, default=16,
                   help="k of the base configuration and of the strategy group (default 16)")
    p.add_argument("--seed", type=non_negative_int, default=0)
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
                        origins=FLAGS)
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
