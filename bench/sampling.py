"""Sampling throughput: negative-sampling strategies, 1-N batches and plain edge batches.

    python bench/sampling.py --graph fb15k237img --source ../shared/datasets/fb15k237img \\
        [--data-dir DIR] [--batch-size 1024] [--ks 32 256] [--repeats 7] [--threads N]

Every number is the median over ``--repeats`` timed blocks (``time.perf_counter``) after a
warm-up block; a block is ``--block`` consecutive batches. negatives/s is ``b * k`` per batch
divided by the time per batch, also for shared negatives (each query is scored against ``k``
negatives even though only ``num_chunks * k`` are drawn). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from roam_graph.cli._options import add_config_flags, add_graph_flag
from roam_graph.graph.prepare import PrepareOptions, default_data_dir, prepare_graph
from roam_graph.sampling import (
    EdgeBatchSampler,
    OneToNSampler,
    dense_targets,
    make_negative_sampler,
    seeded_generator,
)

STRATEGIES = ("uniform", "bernoulli", "shared", "filtered", "type-constrained", "degree")


def median_seconds(run_block: Callable[[], int], repeats: int) -> float:
    """Median seconds per batch; ``run_block`` runs some batches and returns how many."""
    run_block()  # warm-up: caches, allocator, lazy initialisation
    per_batch = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = run_block()
        per_batch.append((time.perf_counter() - start) / count)
    return statistics.median(per_batch)


def row(name: str, k: int | str, seconds: float, negatives_per_batch: int | None) -> str:
    rate = f"{negatives_per_batch / seconds / 1e6:,.2f} M" if negatives_per_batch else "-"
    return f"| {name} | {k} | {1 / seconds:,.0f} | {rate} | {seconds * 1e3:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_graph_flag(parser, default="fb15k237img")
    add_config_flags(parser, "--source", "--data-dir")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--ks", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--block", type=int, default=10, help="batches per timed block")
    parser.add_argument("--chunk-size", type=int, default=64, help="rows sharing negatives")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kg = prepare_graph(PrepareOptions(args.graph, source=args.source,
                                      data_dir=args.data_dir or default_data_dir()),
                       log=lambda _: None).kg
    b = args.batch_size
    print(f"{kg!r}; batch {b}; torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| sampler | k | batches/s | negatives/s | ms/batch |")
    print("|---|---|---|---|---|")

    edges = EdgeBatchSampler.from_kg(kg, b, seed=0)
    positives = [batch for _, batch in zip(range(args.block), edges, strict=False)]
    for k in args.ks:
        for strategy in STRATEGIES:
            sampler = make_negative_sampler(strategy, kg, k, chunk_size=args.chunk_size)

            def block(sampler: Callable = sampler) -> int:
                for index, batch in enumerate(positives):
                    sampler(batch, seeded_generator(index))
                return len(positives)

            print(row(strategy, k, median_seconds(block, args.repeats), b * k), flush=True)

    def epoch_rate(sampler: EdgeBatchSampler | OneToNSampler,
                   finish: Callable = lambda batch: batch) -> Callable[[], int]:
        def run() -> int:
            count = 0
            for batch in sampler:  # one full epoch per block
                finish(batch)
                count += 1
            return count
        return run

    plain = EdgeBatchSampler.from_kg(kg, b, seed=0)
    print(row("edge batches (no negatives)", "-", median_seconds(epoch_rate(plain), 3), None))
    reciprocal = EdgeBatchSampler.from_kg(kg, b, reciprocal=True, seed=0)
    print(row("edge batches, reciprocal", "-", median_seconds(epoch_rate(reciprocal), 3), None))
    one_to_n = OneToNSampler.from_kg(kg, b, seed=0)
    print(row("1-N batches (sparse targets)", "-", median_seconds(epoch_rate(one_to_n), 3),
              None))
    print(row("1-N batches + dense_targets(0.1)", "-", median_seconds(
        epoch_rate(one_to_n, lambda batch: dense_targets(batch, 0.1)), 3), None))
    # End to end through the sampler, in the main process or in 2 worker processes, over the
    # first 64 batches' worth of train (one such epoch per timed block).
    k = max(args.ks)
    subset = kg.triples("train")[:64 * b]
    for strategy in ("shared", "filtered"):
        negatives = make_negative_sampler(strategy, kg, k, chunk_size=args.chunk_size)
        for workers in (0, 2):
            loop = EdgeBatchSampler.from_kg(kg, b, triples=subset, seed=0, transform=negatives,
                                            num_workers=workers)
            seconds = median_seconds(epoch_rate(loop), 3)
            print(row(f"edge batches + {strategy}, {workers} workers", k, seconds, b * k))
            loop.close()

if __name__ == "__main__":
    main()
