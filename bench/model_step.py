"""Forward + backward time of one training step, ROAM vs Tucker, next to this machine's matmul peak.

    python bench/model_step.py --graph db15k --source ../shared/datasets/db15k

The structure is the real graph; image (4096-d) and text (768-d) features are random at the
widths of the paper's Table 6, since the published feature files cannot be downloaded here (speed
does not depend on their values). Batch 1024, dim 256, K = 5, L = 50 (Table 13, DB15K), 1-N.
FLOPs are counted analytically (multiply-adds x 2; backward = 2 x forward) for the matmul-shaped
work, which dominates; element-wise work is not counted, so GFLOP/s is a lower bound.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from roam_graph.cli._options import add_config_flag, add_config_flags, add_graph_flag
from roam_graph.data.mmkg_data import Modality
from roam_graph.graph.prepare import PrepareOptions, prepare_graph
from roam_graph.model import build_model, resolve_config, total_loss
from roam_graph.model.config import same_widths
from roam_graph.sampling import OneToNSampler, dense_targets


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * size ** 3 / min(times) / 1e9


def step_flops(model: str, batch: int, entities: int, dim: int, groups: int, modalities: int,
               distinct_relations: int, critic_queries: int = 0) -> float:
    """Matmul FLOPs of a step. The critic (``critic_queries`` queries scored under every
    group without gradient, docs/model.md) runs forward only."""
    tucker = 2 * (distinct_relations * dim ** 3 + batch * dim ** 2 + batch * dim * entities)
    if model == "tucker":
        return 3 * tucker
    experts = 2 * 2 * dim * dim * modalities * groups * (entities + batch)
    scoring = 2 * batch * dim * entities * (modalities - 1)   # one matmul per extra modality
    critic = 2 * critic_queries * groups * (dim ** 2 + dim * entities * modalities)
    return 3 * (tucker + experts + scoring) + critic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_graph_flag(parser, default="db15k")
    add_config_flags(parser, "--source", "--data-dir")
    parser.add_argument("--batch-size", type=int, default=1024)
    add_config_flag(parser, "--dim", default=256)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kg = prepare_graph(PrepareOptions(args.graph, args.source, args.data_dir)).kg
    generator = torch.Generator().manual_seed(0)
    present = torch.ones(kg.num_entities, dtype=torch.bool)
    features = {"image": Modality(torch.randn(kg.num_entities, 4096, generator=generator), present),
                "text": Modality(torch.randn(kg.num_entities, 768, generator=generator), present)}
    sampler = OneToNSampler.from_kg(kg, args.batch_size, seed=0)
    batches = [b for _, b in zip(range(args.steps + 1), sampler, strict=False)]
    peak = matmul_peak()
    print(f"graph {args.graph}: {kg.num_entities} entities; batch {args.batch_size}, dim "
          f"{args.dim}, K={args.groups}, L={args.iterations}, {args.threads} thread(s); "
          f"matmul peak {peak:.1f} GFLOP/s")
    print("model   | ms/step (median) | GFLOP/step | GFLOP/s | % of peak")
    results = {}
    # "roam-ot": the printed Eq. 11 trains the cost (no critic), to show what the critic costs
    for label, name, variant in (("tucker", "tucker", "full"), ("roam-ot", "roam", "paper-ot-loss"),
                                 ("roam", "roam", "full")):
        config = resolve_config(name, variant, **same_widths(args.dim), num_groups=args.groups,
                                sinkhorn_iterations=args.iterations)
        torch.manual_seed(0)
        model = build_model(config, kg.num_entities, 2 * kg.num_relations, features).train()
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        times = []
        for index, batch in enumerate(batches):
            targets = dense_targets(batch, 0.1)
            started = time.perf_counter()
            output = model(batch.queries[:, 0], batch.queries[:, 1])
            loss, _ = total_loss(output, targets, config.ot_weight, "bce", config.ot_epsilon)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if index:  # the first step warms up allocators and kernels
                times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        distinct = int(torch.unique(batches[1].queries[:, 1]).numel())
        critic = (min(config.critic_queries, args.batch_size)
                  if config.cost_signal == "critic" else 0)
        flops = step_flops(name, args.batch_size, kg.num_entities, args.dim, args.groups,
                           len(model.modality_names), distinct, critic)
        results[label] = seconds
        print(f"{label:<7} | {1000 * seconds:16.0f} | {flops / 1e9:10.1f} | "
              f"{flops / seconds / 1e9:7.1f} | {100 * flops / seconds / 1e9 / peak:8.0f}%")
    print(f"roam / tucker step time: {results['roam'] / results['tucker']:.2f}x; the critic "
          f"adds {100 * (results['roam'] / results['roam-ot'] - 1):.0f}% to a ROAM step")


if __name__ == "__main__":
    main()
