"""The ROAM model: separable candidate scoring equals the naive definition, evaluation scores do
not depend on the batch, masked modalities get no attention, gradients reach every component,
and every model and variant name builds and trains."""

from __future__ import annotations

import pytest
import torch

from roam_graph.data import Modality
from roam_graph.model import MODELS, VARIANTS, build_model, resolve_config, total_loss
from roam_graph.model.roam import RoamModel

N, R = 40, 6


def features() -> dict[str, Modality]:
    generator = torch.Generator().manual_seed(0)
    image_present = torch.rand(N, generator=generator) > 0.3
    text_present = torch.rand(N, generator=generator) > 0.2
    image = torch.randn(N, 7, generator=generator) * image_present[:, None]
    text = torch.randn(N, 5, generator=generator) * text_present[:, None]
    return {"image": Modality(image, image_present), "text": Modality(text, text_present)}


def small_model(**settings: object) -> RoamModel:
    torch.manual_seed(0)
    config = resolve_config("roam", settings.pop("variant", "full"), dim=12, relation_dim=8,
                            expert_hidden=10, cost_hidden=9, num_groups=3, **settings)
    return RoamModel(config, N, R, features())


def naive_scores(model: RoamModel, heads: torch.Tensor, relations: torch.Tensor,
                 candidates: torch.Tensor) -> torch.Tensor:
    """Reference: materialise every candidate's fused vector under each query's relation and
    option (Eq. 3-4 literally), then score with the Tucker query vector."""
    out = model(heads, relations)
    option = out.selected.expand(-1, len(model.modality_names))          # [B, M]
    relation = model.relations(relations)
    attention = model.attention
    use_relation = model.config.candidate_encoding == "relation_aware"

    def fused(entity: int, query: int, with_relation: bool) -> torch.Tensor:
        raw, present = model.inputs(torch.tensor([entity]))
        experts_out = model.experts.apply_table(raw, model.expert_of)[0]  # [M, O, d]
        vectors = torch.stack([experts_out[m, option[query, m]] for m in range(len(option[0]))])
        logits = (vectors * attention.entity_weight).sum(-1) + attention.bias
        if with_relation:
            logits = logits + attention.relation_weight @ relation[query]
        weights = attention.weights(logits, present[0], dim=0)
        return (weights[:, None] * vectors).sum(0)

    scores = torch.zeros(candidates.shape, dtype=torch.float32)
    for i in range(len(heads)):
        head = fused(int(heads[i]), i, True)
        only = torch.zeros(1, dtype=torch.long)        # one query, one distinct relation
        query = model.tucker.query(head[None], relation[i : i + 1], only)[0]
        for j, t in enumerate(candidates[i].tolist()):
            scores[i, j] = query @ fused(t, i, use_relation)
    return scores


@pytest.mark.parametrize("layout", ["full", "mge", "sep"])
@pytest.mark.parametrize("encoding", ["relation_aware", "relation_agnostic"])
def test_separable_scoring_equals_the_naive_definition(layout: str, encoding: str) -> None:
    model = small_model(variant=layout, candidate_encoding=encoding).eval()
    heads, relations = torch.tensor([0, 5, 9, 33]), torch.tensor([1, 4, 1, 5])
    everything = torch.arange(N).expand(len(heads), -1)
    with torch.no_grad():
        expected = naive_scores(model, heads, relations, everything)
        assert torch.allclose(model(heads, relations).scores, expected, atol=1e-5)
        some = torch.tensor([[3, 3, 7], [0, 39, 12], [5, 6, 7], [1, 2, 3]])
        assert torch.allclose(model(heads, relations, some).scores,
                              expected.gather(1, some), atol=1e-5)


@pytest.mark.parametrize("routing", ["top1", "soft"])
def test_evaluation_scores_do_not_depend_on_the_rest_of_the_batch(routing: str) -> None:
    model = small_model(routing=routing).eval()
    heads, relations = torch.arange(20), torch.arange(20) % R
    with torch.no_grad():
        together = model(heads, relations).scores
        alone = torch.cat([model(heads[i : i + 1], relations[i : i + 1]).scores
                           for i in range(20)])
        shuffled = torch.randperm(20, generator=torch.Generator().manual_seed(0))
        permuted = model(heads[shuffled], relations[shuffled]).scores
    assert torch.allclose(together, alone, atol=1e-6)
    assert torch.allclose(together[shuffled], permuted, atol=1e-6)


def test_a_missing_modality_gets_zero_attention_and_no_influence() -> None:
    model = small_model().eval()
    missing = int((~model.inputs.present_image).nonzero()[0, 0])
    heads, relations = torch.tensor([missing]), torch.tensor([2])
    with torch.no_grad():
        out = model(heads, relations)
        image_column = model.modality_names.index("image")
        assert float(out.modality_weights[0, image_column]) == 0.0
        before = model(torch.arange(N), torch.zeros(N, dtype=torch.long)).scores[:, missing]
        model.inputs.raw["image"][missing] = 1e3      # garbage in an absent row changes nothing
        after = model(torch.arange(N), torch.zeros(N, dtype=torch.long)).scores[:, missing]
    assert torch.equal(before, after)


def test_gradients_reach_cost_group_attention_experts_and_relations() -> None:
    model = small_model().train()
    heads, relations = torch.randint(0, N, (16,)), torch.randint(0, R, (16,))
    out = model(heads, relations)
    loss, _ = total_loss(out, torch.rand(16, N), ot_weight=0.1)
    loss.backward()
    parts = {"phi": model.cost.output.weight, "A": model.group_representation.attention[0].weight,
             "experts": model.experts.w1, "relations": model.relations.weight,
             "attention": model.attention.relation_weight}
    for name, parameter in parts.items():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_routing_introspection_reports_plan_and_choice() -> None:
    model = small_model().train()
    out = model(torch.randint(0, N, (10,)), torch.randint(0, R, (10,)))
    assert out.routing.plan.shape == (10, 1, 3)
    assert torch.allclose(out.routing.plan.sum(-1), torch.ones(10, 1), atol=1e-5)
    assert out.selected.shape == (10, 1) and out.modality_weights.shape == (10, 3)


@pytest.mark.parametrize("name", [f"roam:{v}" for v in VARIANTS] + list(MODELS))
def test_every_model_and_variant_trains_one_step(name: str) -> None:
    model_name, _, variant = name.partition(":")
    config = resolve_config(model_name, variant or "full", dim=8, relation_dim=8,
                            expert_hidden=8, cost_hidden=8, num_groups=3)
    torch.manual_seed(0)
    model = build_model(config, N, R, features()).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    heads, relations = torch.randint(0, N, (12,)), torch.randint(0, R, (12,))
    for candidates in (None, torch.randint(0, N, (12, 4))):
        out = model(heads, relations, candidates)
        targets = torch.zeros_like(out.scores)
        targets[:, 0] = 1.0
        loss, _ = total_loss(out, targets, config.ot_weight)
        assert torch.isfinite(loss)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after = [p.detach() for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_modality_subsets_and_unknown_names() -> None:
    model = small_model(modalities=("structure", "text"))
    assert model.modality_names == ("structure", "text")
    with pytest.raises(ValueError, match="unknown variant 'w/o-everything'"):
        resolve_config("roam", "w/o-everything")
    with pytest.raises(ValueError, match="choose a non-empty subset"):
        resolve_config("roam", modalities=("audio",))
