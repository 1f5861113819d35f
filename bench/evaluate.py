"""Full filtered evaluation of the test split (both directions) next to the time of scoring alone.

    python bench/evaluate.py --graph fb15k237img --source ../shared/datasets/fb15k237img

A fixed, untrained small Tucker model (dim 32, seed 0) scores every query against all entities;
"scoring alone" runs the same batches without filtering or ranking. Goal to aim at: filtering
and ranking add at most 50 % on top of scoring.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from roam_graph.cli._options import add_config_flag, add_config_flags, add_graph_flag
from roam_graph.evaluation import build_filter, evaluate
from roam_graph.graph.prepare import PrepareOptions, prepare_graph
from roam_graph.model import build_model, resolve_config
from roam_graph.model.config import same_widths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_graph_flag(parser, default="fb15k237img")
    add_config_flags(parser, "--source", "--data-dir")
    add_config_flag(parser, "--dim", default=32)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kg = prepare_graph(PrepareOptions(args.graph, args.source, args.data_dir)).kg
    torch.manual_seed(0)
    config = resolve_config("tucker", **same_widths(args.dim))
    model = build_model(config, kg.num_entities, 2 * kg.num_relations, {}).eval()
    test = kg.triples("test")
    heads = torch.cat([test[:, 0], test[:, 2]])
    relations = torch.cat([test[:, 1], test[:, 1] + kg.num_relations])

    def score(h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return model(h, r).scores

    started = time.perf_counter()
    known = build_filter(kg)
    filter_seconds = time.perf_counter() - started
    scoring, full = [], []
    for _ in range(args.repeats):
        with torch.inference_mode():
            started = time.perf_counter()
            for start in range(0, len(heads), args.batch_size):
                score(heads[start:start + args.batch_size],
                      relations[start:start + args.batch_size])
            scoring.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = evaluate(score, test, known, kg.num_relations, batch_size=args.batch_size)
        full.append(time.perf_counter() - started)
    score_s, full_s = statistics.median(scoring), statistics.median(full)
    print(f"graph {args.graph}: {len(test)} test triples x 2 directions = {len(heads)} queries "
          f"against {kg.num_entities} entities; Tucker dim {args.dim}, batch {args.batch_size}, "
          f"{args.threads} thread(s); median of {args.repeats}")
    print(f"building the filter (train+valid+test, reciprocal): {filter_seconds:.2f} s")
    print(f"scoring alone:                 {score_s:.2f} s")
    print(f"full filtered evaluation:      {full_s:.2f} s "
          f"(+{100 * (full_s / score_s - 1):.0f} % over scoring)")
    print(f"(untrained model, test MRR {result.headline['mrr']:.4f})")


if __name__ == "__main__":
    main()
