"""Train and evaluate a model on a multimodal KG: the main job.

    python pipelines/run.py                                   # embedded synthetic graph
    python pipelines/run.py --graph fb15k237img --source ../shared/datasets/fb15k237img
    python pipelines/run.py --graph db15k --source DIR --model roam --variant mge --runs 5
    python pipelines/run.py --graph db15k --source DIR --epochs 20 --out runs/x --resume
    python pipelines/run.py --graph mygraph --format names --source DIR   # docs/data-formats.md
    torchrun --standalone --nproc_per_node=2 pipelines/run.py --graph synthetic --distributed

Defaults come from configs/<graph>.yaml (the paper's Table 13); flags override them. Results go to
--out (default runs/<graph>/<model>-<variant>/seed<S>): config.json (at the start), history.csv
(a row per epoch), last.pt, best.pt, then metrics.json and ranks.pt; with --runs N also summary.md
and summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from roam_graph.atomic import write_json
from roam_graph.cli._options import add_graph_arguments, base_config, flag_overrides, shared_flags
from roam_graph.cli._parsing import Parser, non_negative_int, positive_int
from roam_graph.evaluation import build_filter
from roam_graph.evaluation.baselines import random_scorer_metrics
from roam_graph.graph.prepare import prepare_graph
from roam_graph.model.config import MODELS, VARIANTS
from roam_graph.tracking import TRACKERS, tracking
from roam_graph.training import distributed
from roam_graph.training.config import LOSSES, REGIMES, default_out, prepare_options, with_seed
from roam_graph.training.reports import summarize_runs, summary_markdown
from roam_graph.training.trainer import run_training


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    p = Parser(prog=prog, description=__doc__)
    add_graph_arguments(p)
    p.add_argument("--model", choices=MODELS)
    p.add_argument("--variant", choices=list(VARIANTS))
    p.add_argument("--modalities", help="comma-separated subset of structure,image,text")
    p.add_argument("--groups", type=positive_int, help="number of expert groups K")
    p.add_argument("--input-noise", type=float, help="Gaussian input noise, fraction of std")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--dim", type=positive_int, help="sets every model width (embedding, "
                                                    "relation, expert hidden, gating hidden)")
    p.add_argument("--lr", type=float)
    p.add_argument("--training", choices=REGIMES, help="1-n (default) or negative-sampling")
    p.add_argument("--loss", choices=LOSSES, help="bce (Eq. 10, default) or softmax "
                                                  "cross-entropy")
    p.add_argument("--negatives", type=positive_int, help="negatives per positive")
    p.add_argument("--negative-strategy", help="e.g. uniform, bernoulli+filtered, shared")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--seed", type=non_negative_int)
    p.add_argument("--runs", type=positive_int, default=1, help="repeat with seeds S, S+1, ...")
    p.add_argument("--eval-every", type=positive_int)
    p.add_argument("--patience", type=positive_int)
    p.add_argument("--out", type=Path, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--tracker", choices=TRACKERS, default="none",
                   help="also log each evaluation (losses, validation metrics, routing "
                        "diagnostics) to tensorboard: <out>/tensorboard (extra "
                        "roam-graph[tensorboard])")
    p.add_argument("--large-graph", action="store_true",
                   help="large-graph mode: negative sampling (implies --training "
                        "negative-sampling), sparse entity embeddings with SparseAdam, evaluation "
                        "in candidate chunks (docs/SCALING.md)")
    p.add_argument("--candidate-chunk", type=positive_int,
                   help="evaluate against candidate entities in chunks of this size (memory "
                        "batch x chunk; default: all at once, 8192 with --large-graph)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training (DDP) under torchrun, e.g. torchrun --standalone "
                        "--nproc_per_node=2 pipelines/run.py --distributed (docs/distributed.md)")
    return p.parse_args(argv)


def overrides(args: argparse.Namespace) -> tuple[dict[str, object], dict[str, str]]:
    """The config keys the flags set, and the flag that set each (errors name it)."""
    return flag_overrides([
        *shared_flags(args),
        ("--model", "model.model", args.model), ("--variant", "model.variant", args.variant),
        ("--modalities", "model.modalities", args.modalities),
        ("--groups", "model.num_groups", args.groups),
        ("--input-noise", "model.input_noise", args.input_noise),
        ("--lr", "training.lr", args.lr), ("--loss", "training.loss", args.loss),
        # --large-graph implies negative sampling; an explicit --training 1-n is refused later
        ("--training" if args.training else "--large-graph", "training.regime",
         args.training or ("negative-sampling" if args.large_graph else None)),
        ("--large-graph", "training.large_graph", True if args.large_graph else None),
        ("--candidate-chunk", "evaluation.candidate_chunk", args.candidate_chunk),
        ("--negatives", "training.negatives", args.negatives),
        ("--negative-strategy", "training.negative_strategy", args.negative_strategy),
    ])


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    try:
        return train_and_report(args)
    finally:
        distributed.teardown()  # leave the process group even on error (no-op without one)


def train_and_report(args: argparse.Namespace) -> int:
    if args.distributed:
        distributed.torchrun_environment(os.environ)  # fail before any work if not under torchrun
    else:
        distributed.refuse_torchrun_without_flag(os.environ)
    config = base_config(args, *overrides(args))
    context = distributed.init_distributed(config.device) if args.distributed else None
    say = print if context is None or context.is_main else _silent  # rank 0 speaks for all
    started = time.perf_counter()
    with distributed.local_main_first(context):  # one process per node fills the cache
        kg = prepare_graph(prepare_options(config, download=not args.no_download), log=say).kg
    say(repr(kg))
    model = config.model
    out = args.out or default_out(config)
    results = []
    for index in range(args.runs):
        run_config = with_seed(config, config.seed + index)
        run_out = out / f"run-{index}" if args.runs > 1 else out
        ranks = "" if context is None else (
            f", {context.world_size} ranks ({context.backend}) x "
            f"{distributed.per_rank_batch_size(config.training.batch_size, context.world_size)}"
            f" queries per step")
        say(f"run {index + 1}/{args.runs}: {model.model} ({model.variant}), seed "
            f"{run_config.seed}, {run_config.training.regime}, out {run_out}{ranks}")
        main_rank = context is None or context.is_main  # rank 0 alone tracks
        with tracking(args.tracker if main_rank else None, run_out) as tracker:
            results.append(run_training(run_config, kg, run_out, resume=args.resume, log=say,
                                        progress=not args.quiet, context=context,
                                        tracker=tracker))
    if context is not None and not context.is_main:
        return 0  # rank 0 writes the summary and prints the results
    random_mrr = random_scorer_metrics(kg, build_filter(kg), seed=config.seed)["mrr"]
    print(result_table(results, random_mrr))
    if args.runs > 1:
        summary = summarize_runs([r.test for r in results])
        write_json(out / "summary.json", {"config": config.to_dict(), "test": summary,
                                          "runs": [str(r.out) for r in results]})
        (out / "summary.md").write_text(summary_markdown(f"{model.model} ({model.variant})",
                                                         summary), encoding="utf-8")
        print(f"summary: {out / 'summary.md'}")
    print(f"finished in {time.perf_counter() - started:.0f} s; files in {out}")
    return 0


def result_table(results: list, random_mrr: float) -> str:
    lines = ["", "test (filtered, realistic ties) | MRR    | MR      | H@1    | H@3    | H@10",
             "--------------------------------|--------|---------|--------|--------|-------"]
    for r in results:
        t = r.test
        lines.append(f"{str(r.out)[-31:]:<31} | {t['mrr']:.4f} | {t['mr']:7.1f} | "
                     f"{t['hits@1']:.4f} | {t['hits@3']:.4f} | {t['hits@10']:.4f}")
    lines.append(f"{'random scorer (same filter)':<31} | {random_mrr:.4f} |")
    lines.append(f"selected epoch(s) on validation: {[r.best_epoch for r in results]}; "
                 f"metrics.json: {json.dumps(str(results[0].out / 'metrics.json'))}")
    return "\n".join(lines)


def _silent(*_: object) -> None:
    pass
