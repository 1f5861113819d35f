"""Seconds per training step of a real run's configuration (graph, features, config file), and
optionally where they go: the step ``run.py`` takes, on the graph's own features.

    python bench/train_step.py --graph db15k --source ../shared/datasets/db15k --threads 2 \
        --dim 64 --modalities structure,text --batch-size 1024
    python bench/train_step.py ... --profile      # the 25 operators with the most self time
    python bench/train_step.py ... --epoch-flops  # matrix-product FLOPs of a whole first epoch

bench/model_step.py compares models at the paper's widths on random features and counts FLOPs;
this one times the step a given run would take (same sampler, regime, loss and precision).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from roam_graph.cli._options import (
    GRAPH_FLAGS,
    add_configuration_arguments,
    add_set_option,
    base_config,
    command_overrides,
)
from roam_graph.graph.prepare import prepare_graph
from roam_graph.training.config import prepare_options
from roam_graph.training.trainer import Session, start_session, train_step

#: the configuration flags it takes besides ``--set``
FLAGS = (*GRAPH_FLAGS, "--dim", "--batch-size", "--modalities", "--regime", "--loss",
         "--precision", "--device", "--seed")


def step(session: Session, batch: object) -> None:
    """One step exactly as ``trainer.train_epoch`` takes it (autocast, scaler and all)."""
    train_step(session.trainable, batch, session.regime, session.optimiser, session.config,
               session.device, session.scaler, session.precision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_configuration_arguments(parser, FLAGS)
    add_set_option(parser, "any config key, as experiments.py --set")
    parser.add_argument("--steps", type=int, default=6, help="timed steps after a warm-up one")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--epoch-flops", action="store_true",
                        help="instead of timing: train the first epoch under FlopCounterMode "
                             "and print its matrix-product TFLOP (as docs/benchmarks.md counts)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = base_config(args, *command_overrides(args, FLAGS, args.set))
    kg = prepare_graph(prepare_options(config)).kg
    with tempfile.TemporaryDirectory() as out:
        session = start_session(config, kg, Path(out), False, lambda _: None, None, None)
    session.sampler.set_epoch(1)
    session.model.begin_epoch(1, config.training.epochs)
    session.model.train()
    if args.epoch_flops:
        flops = 0
        for batch in session.sampler:
            with FlopCounterMode(display=False) as counter:
                step(session, batch)
            flops += counter.get_total_flops()
        print(f"{args.graph}: {flops / 1e12:.3g} TFLOP in epoch 1 ({len(session.sampler)} "
              f"steps); routing {config.model.routing}, dim {config.model.dim}")
        return
    batches = [b for _, b in zip(range(args.steps + 1), session.sampler, strict=False)]
    step(session, batches[0])
    times = []
    profiling = profile(activities=[ProfilerActivity.CPU]) if args.profile else None
    with profiling or contextlib.nullcontext():
        for batch in batches[1:]:
            started = time.perf_counter()
            step(session, batch)
            times.append(time.perf_counter() - started)
    print(f"{args.graph}: {statistics.median(times):.3f} s/step (median of {len(times)}), "
          f"{len(session.sampler)} steps/epoch, {args.threads} thread(s); routing "
          f"{config.model.routing}, loss {config.training.loss}, batch "
          f"{config.training.batch_size}, dim {config.model.dim}")
    if args.profile:
        print(profiling.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
