"""Forward + backward + Adam time of one training step, ROAM vs Tucker, next to this machine's
matmul peak measured in the same run.

    python bench/model_step.py --graph db15k --source ../shared/datasets/db15k --threads 2 \
        --batch-sizes 1024,4096

The structure is the real graph; image (4096-d) and text (768-d) features are random at the
widths of the paper's Table 6, since the published feature files cannot be downloaded here (speed
does not depend on their values). dim 256, K = 5, L = 50 (Table 13, DB15K), 1-N, BCE.

FLOPs are counted, not estimated: one step runs under torch's ``FlopCounterMode``, which counts
every matrix product (mm, addmm, bmm, baddbmm, and the einsums that become them) forward and
backward: the feature adapters, the experts on heads and candidates, the Tucker core and query,
the relation-aware scoring and the critic's scoring of every option. Element-wise work
(softmax, Sinkhorn, activations) is not counted, so GFLOP/s is a lower bound on work done.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from roam_graph.cli._options import add_config_flag, add_config_flags, add_graph_flag
from roam_graph.data.mmkg_data import Modality
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.graph.prepare import PrepareOptions, prepare_graph
from roam_graph.model import KGModel, build_model, resolve_config, total_loss
from roam_graph.model.config import same_widths
from roam_graph.sampling import OneToNBatch, OneToNSampler, dense_targets

#: (label, model, variant); "roam-ot" trains the cost by Eq. 11 as printed (no critic), to show
#: what the critic costs
MODELS = (("tucker", "tucker", "full"), ("roam-ot", "roam", "paper-ot-loss"),
          ("roam", "roam", "full"))


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a float32 ``size``-cubed matrix product, best of ``repeats``."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * size ** 3 / min(times) / 1e9


def random_features(kg: MultimodalKG) -> dict[str, Modality]:
    generator = torch.Generator().manual_seed(0)
    present = torch.ones(kg.num_entities, dtype=torch.bool)
    return {"image": Modality(torch.randn(kg.num_entities, 4096, generator=generator), present),
            "text": Modality(torch.randn(kg.num_entities, 768, generator=generator), present)}


def make_step(model: KGModel, loss_settings: tuple[float, float]
              ) -> Callable[[OneToNBatch], None]:
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    ot_weight, epsilon = loss_settings

    def step(batch: OneToNBatch) -> None:
        output = model(batch.queries[:, 0], batch.queries[:, 1])
        loss, _ = total_loss(output, dense_targets(batch, 0.1), ot_weight, "bce", epsilon)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return step


def counted_flops(step: Callable[[OneToNBatch], None], batch: OneToNBatch) -> float:
    """Matmul FLOPs of one step (forward, backward and the optimiser)."""
    with FlopCounterMode(display=False) as counter:
        step(batch)
    return float(counter.get_total_flops())


def timed(step: Callable[[OneToNBatch], None], batches: list[OneToNBatch]) -> float:
    """Median seconds of a step (NaN without batches: ``--steps 0`` counts FLOPs only, which
    do not depend on the machine)."""
    times = []
    for batch in batches:
        started = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - started)
    return statistics.median(times) if times else float("nan")


def measure(kg: MultimodalKG, features: dict[str, Modality], args: argparse.Namespace,
            batch_size: int, peak: float) -> dict[str, tuple[float, float]]:
    """``label -> (seconds per step, FLOPs per step)`` for every model at ``batch_size``."""
    sampler = OneToNSampler.from_kg(kg, batch_size, seed=0)
    batches = [b for _, b in zip(range(args.steps + 1), sampler, strict=False)]
    found = {}
    for label, name, variant in MODELS:
        config = resolve_config(name, variant, **same_widths(args.dim), num_groups=args.groups,
                                sinkhorn_iterations=args.iterations,
                                feature_width=args.feature_width, routing=args.routing,
                                top1_scoring=args.top1_scoring)
        torch.manual_seed(0)
        model = build_model(config, kg.num_entities, 2 * kg.num_relations, features).train()
        step = make_step(model, (config.ot_weight, config.ot_epsilon))
        flops = counted_flops(step, batches[0])  # also the warm-up step
        seconds = timed(step, batches[1:])
        found[label] = (seconds, flops)
        print(f"{label:<7} | {batch_size:5d} | {1000 * seconds:8.0f} | {flops / 1e9:8.1f} | "
              f"{flops / seconds / 1e9:7.1f} | {100 * flops / seconds / 1e9 / peak:6.0f}%")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_graph_flag(parser, default="db15k")
    add_config_flags(parser, "--source", "--data-dir")
    parser.add_argument("--batch-sizes", default="1024", help="comma-separated")
    add_config_flag(parser, "--dim", default=256)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--steps", type=int, default=5,
                        help="timed steps after the counted one (0: count FLOPs only)")
    parser.add_argument("--feature-width", type=int, default=None,
                        help="project the features to this many principal components first "
                             "(model key feature_width; default: the full width)")
    parser.add_argument("--routing", default="top1", choices=("top1", "soft"),
                        help="ROAM's routing in the timed steps (default top1: the hard phase of "
                             "the default annealed routing, and what evaluation runs; soft: its "
                             "first phase)")
    parser.add_argument("--top1-scoring", default="grouped", choices=("grouped", "dense"),
                        help="model key top1_scoring (dense: no host sync, K x the scoring)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kg = prepare_graph(PrepareOptions(args.graph, args.source, args.data_dir)).kg
    features = random_features(kg)
    peak = matmul_peak()
    print(f"graph {args.graph}: {kg.num_entities} entities; dim {args.dim}, K={args.groups}, "
          f"L={args.iterations}, {args.threads} thread(s); matmul peak {peak:.1f} GFLOP/s")
    print("model   | batch | ms/step | GFLOP/step | GFLOP/s | % peak")
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        found = measure(kg, features, args, batch_size, peak)
        (roam_s, roam_f), (tucker_s, tucker_f) = found["roam"], found["tucker"]
        wall, work = roam_s / tucker_s, roam_f / tucker_f
        print(f"batch {batch_size}: roam / tucker wall time {wall:.2f}x, FLOPs {work:.2f}x "
              f"(wall / FLOP ratio {wall / work:.2f}); the critic adds "
              f"{100 * (roam_s / found['roam-ot'][0] - 1):.0f}% to a ROAM step")


if __name__ == "__main__":
    main()
