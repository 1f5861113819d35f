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
from roam_graph.cli._options import (
    SHARED_FLAGS,
    add_configuration_arguments,
    base_config,
    config_flags,
    flag_overrides,
)
from roam_graph.cli._parsing import Parser, positive_int
from roam_graph.evaluation import build_filter
from roam_graph.evaluation.baselines import random_scorer_metrics
from roam_graph.graph.prepare import prepare_graph
from roam_graph.tracking import TRACKERS, tracking
from roam_graph.training import distributed
from roam_graph.training.config import default_out, prepare_options, with_seed
from roam_graph.training.reports import summarize_runs, summary_markdown
from roam_graph.training.trainer import run_training

#: The flags of this command that set configuration keys (``_options.CONFIG_FLAGS``).
FLAGS = (*SHARED_FLAGS, "--model", "--variant", "--modalities", "--groups", "--input-noise",
         "--lr", "--regime", "--loss", "--negatives", "--negative-strategy", "--large-graph",
         "--candidate-chunk")


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    p = Parser(prog=prog, description=__doc__)
    add_configuration_arguments(p, FLAGS)
    p.add_argument("--runs", type=positive_int, default=1, help="repeat with seeds S, S+1, ...")
    p.add_argument("--out", type=Path, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--tracker", choices=TRACKERS, default="none",
                   help="also log each evaluation (losses, validation metrics, routing "
                        "diagnostics) to tensorboard: <out>/tensorboard (extra "
                        "roam-graph[tensorboard])")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training (DDP) under torchrun, e.g. torchrun --standalone "
                        "--nproc_per_node=2 pipelines/run.py --distributed (docs/distributed.md)")
    return p.parse_args(argv)


def overrides(args: argparse.Namespace) -> tuple[dict[str, object], dict[str, str]]:
    """The config keys the flags set, and the flag that set each (errors name it)."""
    flags = config_flags(args, FLAGS)
    if args.large_graph and args.regime is None:
        # --large-graph implies negative sampling; an explicit --regime 1-n is refused later
        flags.append(("--large-graph", "training.regime", "negative-sampling"))
    return flag_overrides(flags)


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
