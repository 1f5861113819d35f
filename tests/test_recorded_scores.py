"""Rewrite guard for the model step: each model, built with a fixed seed on the tiny graph,
gives the scores and losses recorded from the implementation before the step was rewritten
(``tests/data/recorded_scores.pt``), within 1e-5, in training mode (the step that is optimised)
and in evaluation mode, against all entities (1-N) and against given candidates.

Re-record only for a change meant to alter the model's function, and say why in its commit:

    python tests/test_recorded_scores.py --record
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model import build_model, resolve_config, total_loss

RECORD = Path(__file__).resolve().parent / "data" / "recorded_scores.pt"
SMALL = {"dim": 8, "relation_dim": 8, "expert_hidden": 8, "cost_hidden": 8, "num_groups": 3,
         "critic_queries": 8}
CASES: dict[str, tuple[str, dict[str, object]]] = {
    "roam": ("roam", {"routing": "top1"}),   # the default when recorded (now anneal)
    "roam-residual": ("roam", {"routing": "top1", "expert_form": "residual"}),
    "roam-soft": ("roam", {"routing": "soft"}),
    "roam-mge": ("roam", {"routing": "top1", "expert_layout": "mge"}),
    "tucker": ("tucker", {}),
    "momok": ("momok", {}),
    "sinkhorn-moe": ("sinkhorn-moe", {}),
}


def fingerprint(scores: torch.Tensor) -> torch.Tensor:
    """The first 96 columns, and every row's sum and sum of squares (a small file that still
    sees a change in any score)."""
    scores = scores.detach().double()
    return torch.cat([scores[:, :96], scores.sum(1, keepdim=True),
                      scores.square().sum(1, keepdim=True)], dim=1).float()


def observe(case: str, kg: MultimodalKG) -> dict[str, torch.Tensor]:
    """Scores and losses of ``case``: a training step's forward (1-N and given candidates),
    then evaluation scores, from one seeded model."""
    name, settings = CASES[case]
    config = resolve_config(name, **SMALL, **settings)
    torch.manual_seed(0)
    model = build_model(config, kg.num_entities, 2 * kg.num_relations, kg.modalities, seed=0)
    generator = torch.Generator().manual_seed(1)
    heads = torch.randint(kg.num_entities, (24,), generator=generator)
    relations = torch.randint(2 * kg.num_relations, (24,), generator=generator)
    candidates = torch.randint(kg.num_entities, (24, 6), generator=generator)
    targets = torch.zeros(24, kg.num_entities)
    targets[torch.arange(24), candidates[:, 0]] = 1.0
    seen = {}
    model.train()
    for mode, given, wanted in (("1-n", None, targets), ("given", candidates,
                                                        targets.gather(1, candidates))):
        output = model(heads, relations, given)
        loss, parts = total_loss(output, wanted, config.ot_weight, "softmax", config.ot_epsilon)
        seen[f"train_{mode}_scores"] = fingerprint(output.scores)
        seen[f"train_{mode}_loss"] = loss.detach()
        seen[f"train_{mode}_critic"] = parts["critic"].detach()
    model.eval()
    with torch.no_grad():
        seen["eval_scores"] = fingerprint(model(heads, relations).scores)
        encoding = model.encode_entities()
        seen["eval_encoded_scores"] = fingerprint(
            model(heads, relations, candidate_encoding=encoding).scores)
    return seen


@pytest.mark.parametrize("case", sorted(CASES))
def test_scores_and_losses_are_those_recorded(case: str, kg: MultimodalKG) -> None:
    recorded = torch.load(RECORD, weights_only=True)[case]
    seen = observe(case, kg)
    assert set(seen) == set(recorded)
    for key, value in seen.items():
        if key.endswith("_scores"):  # scores within 1e-5; their row sums relatively so
            assert torch.allclose(value[:, :-2], recorded[key][:, :-2], rtol=0, atol=1e-5), key
            assert torch.allclose(value[:, -2:], recorded[key][:, -2:], rtol=1e-5, atol=1e-5)
        else:
            assert torch.allclose(value, recorded[key], rtol=0, atol=1e-5), key


def _record() -> None:
    import tempfile

    from roam_graph.graph.prepare import PrepareOptions, prepare_graph
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        kg = prepare_graph(PrepareOptions("synthetic-tiny", data_dir=folder),
                           log=lambda _: None).kg
        recorded = {case: observe(case, kg) for case in sorted(CASES)}
    RECORD.parent.mkdir(exist_ok=True)
    torch.save(recorded, RECORD)
    print(f"recorded {len(recorded)} cases in {RECORD}")


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    _record()
