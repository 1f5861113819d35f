"""Top-k tails for a query of a trained run, with the group it was routed to.

    python pipelines/predict.py --run runs/synthetic/roam-full/seed0 --head e00042 --relation r03
    python pipelines/predict.py --run DIR --head NAME --relation 'NAME^-1'   # head prediction

Known training answers are marked; scores are the model's logits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from roam_graph.data.errors import DataError
from roam_graph.graph.answers import AnswerIndex
from roam_graph.graph.prepare import prepare_graph
from roam_graph.model import build_model
from roam_graph.model.introspection import routing_report
from roam_graph.training.checkpoint import load_checkpoint
from roam_graph.training.config import load_config, prepare_options


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="output folder of run.py")
    parser.add_argument("--head", required=True, help="entity name")
    parser.add_argument("--relation", required=True, help="relation name (NAME^-1: reversed)")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    config_path = args.run / "config.json"
    if not config_path.is_file():
        raise DataError(f"{config_path}: not found; is {args.run} an output folder of run.py?")
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    settings = {f"{section}.{key}": value for section in ("model", "training", "evaluation")
                for key, value in saved.pop(section).items()}
    config = load_config(None, {**saved, **settings})
    kg = prepare_graph(prepare_options(config), log=lambda _: None).kg
    head, relation = kg.entity_id(args.head), kg.relation_id(args.relation)
    model = build_model(config.model, kg.num_entities, 2 * kg.num_relations, kg.modalities)
    model.load_state_dict(load_checkpoint(args.run / "best.pt", torch.device("cpu"))["model"])
    model.eval()
    heads, relations = torch.tensor([head]), torch.tensor([relation])
    with torch.inference_mode():
        scores = model(heads, relations).scores[0]
    train = kg.triples("train", reciprocal=True)
    known = AnswerIndex.build(train, kg.num_entities, 2 * kg.num_relations)
    _, answers = known.answers(heads, relations)
    top = torch.topk(scores, min(args.top, kg.num_entities))
    known_tails = set(answers.tolist())
    print(f"({args.head}, {kg.relation_name(relation)}, ?) — top {len(top.indices)}")
    for rank, (score, entity) in enumerate(zip(top.values.tolist(), top.indices.tolist(),
                                               strict=True), start=1):
        mark = "  (known in train)" if entity in known_tails else ""
        print(f"{rank:>3}. {kg.entity_names[entity]:<40} {score:8.3f}{mark}")
    report = routing_report(model, heads, relations)
    if report is not None:
        weights = ", ".join(f"{name} {w:.2f}" for name, w in
                            zip(report.modality_names, report.modality_weights[0].tolist(),
                                strict=True))
        print(f"routed to group {int(report.selected[0, 0])} of {report.cost.shape[-1]}; "
              f"modality weights: {weights}")
    return 0
