"""Does a trained ROAM run depend on its routing? Validation MRR of a finished run routed as at
evaluation, and with every query forced into one group (docs/model.md, "Measured with the
critic").

    python bench/routing_probe.py runs/issue11-default [--split valid]

Equal MRRs mean the groups are interchangeable (routing decides nothing); a routed MRR far above
every forced one means the groups specialised and routing picks the right one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from roam_graph.api import load_run
from roam_graph.evaluation import build_filter, evaluate
from roam_graph.model.roam import RoamModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", default="valid", choices=("valid", "test"))
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = load_run(args.run, data_dir=args.data_dir)
    model, kg = run.model.eval(), run.kg
    if not isinstance(model, RoamModel):
        raise SystemExit(f"{args.run}: a {run.config.model.model} run has no routing to probe")
    known, triples = build_filter(kg), kg.triples(args.split)
    with torch.inference_mode():
        encoding = model.encode_entities()

        def scorer(force: int | None):  # noqa: ANN202
            def score(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
                if force is None:
                    return model(heads, relations, candidate_encoding=encoding).scores
                return model.score_every_option(heads, relations, encoding)[0][:, 0, force]
            return score

        for force in [None, *range(model.expert_of.shape[1])]:
            mrr = evaluate(scorer(force), triples, known, kg.num_relations,
                           batch_size=256).headline["mrr"]
            label = "routed" if force is None else f"every query in group {force}"
            print(f"{args.split} MRR, {label}: {mrr:.4f}")


if __name__ == "__main__":
    main()
