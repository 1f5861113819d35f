"""Does a trained ROAM run depend on its routing? Validation MRR of a finished run routed as at
evaluation, and with every query forced into one group (docs/model.md, "Measured with the
critic").

    python bench/routing_probe.py runs/issue11-default [--split valid]

Equal MRRs mean the groups are interchangeable (routing decides nothing); a routed MRR far above
every forced one means the groups specialised and routing picks the right one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from roam_graph.evaluation import build_filter, evaluate
from roam_graph.graph.prepare import prepare_graph
from roam_graph.model import build_model
from roam_graph.model.roam import RoamModel
from roam_graph.training.config import load_config, prepare_options


def load_run(run: Path, data_dir: Path | None) -> tuple[RoamModel, object]:
    saved = json.loads((run / "config.json").read_text(encoding="utf-8"))
    overrides = {f"model.{key}": value for key, value in saved["model"].items()}
    overrides.update({key: saved[key] for key in ("source", "text_encoder", "seed")})
    overrides["data_dir"] = str(data_dir) if data_dir else saved.get("data_dir")
    config = load_config(None, overrides, graph=saved["graph"])
    kg = prepare_graph(prepare_options(config), log=lambda _: None).kg
    model = build_model(config.model, kg.num_entities, 2 * kg.num_relations, kg.modalities)
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    if not isinstance(model, RoamModel):
        raise SystemExit(f"{run}: a {config.model.model} run has no routing to probe")
    return model.eval(), kg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", default="valid", choices=("valid", "test"))
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, kg = load_run(args.run, args.data_dir)
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
