"""The task signal of the routing cost (docs/model.md, "What trains the cost"): the critic
fits the cost to the options' losses and trains phi and g alone; a planted better group is
found; the printed Eq. 11 (``--variant paper-ot-loss``) collapses the cost while the critic keeps
a spread; and the diagnostics measure what routing carries."""

from __future__ import annotations

import math

import pytest
import torch

from roam_graph.data import Modality
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model import build_model, resolve_config, total_loss
from roam_graph.model.diagnostics import (
    diagnostic_queries,
    mutual_information_bits,
    routing_diagnostics,
)
from roam_graph.model.fusion import ModalityAttention
from roam_graph.model.roam import RoamModel
from roam_graph.model.routing import centre_costs, routing_critic_loss
from roam_graph.sampling import OneToNSampler, dense_targets

N, R, GROUPS = 40, 6, 3


def features() -> dict[str, Modality]:
    generator = torch.Generator().manual_seed(0)
    return {"image": Modality(torch.randn(N, 7, generator=generator), torch.ones(N, dtype=bool))}


def small_model(**settings: object) -> RoamModel:
    torch.manual_seed(0)
    config = resolve_config("roam", dim=12, relation_dim=8, expert_hidden=10, cost_hidden=16,
                            num_groups=GROUPS, expert_form="residual", **settings)
    return RoamModel(config, N, R, features())


def test_critic_is_zero_when_the_cost_orders_options_exactly_as_their_losses() -> None:
    losses = torch.tensor([[[0.3, 0.1, 0.9]]])
    assert float(routing_critic_loss(losses - 0.4, losses, 0.05)) == pytest.approx(0, abs=1e-6)
    assert float(routing_critic_loss(-losses, losses, 0.05)) > 1.0       # reversed order


def test_centred_costs_have_zero_mean_per_query_and_keep_differences() -> None:
    cost = torch.tensor([[[1.0, 2.0, 6.0]], [[5.0, 5.0, 5.0]]])
    centred = centre_costs(cost)
    assert torch.allclose(centred.mean(-1), torch.zeros(2, 1))
    assert torch.allclose(centred[0, 0], torch.tensor([-2.0, -1.0, 3.0]))


def test_under_the_critic_only_phi_and_g_learn_from_routing() -> None:
    model = small_model().train()
    targets = (torch.rand(16, N) < 0.1).float()
    output = model(torch.arange(16), torch.arange(16) % R)
    assert output.routing_signal is not None
    assert output.routing_signal.option_scores.shape == (16, 1, GROUPS, N)
    assert not output.routing_signal.option_scores.requires_grad
    critic = total_loss(output, targets, 0.0, "bce", 0.05)[1]["critic"]
    assert float(critic) > 0
    names = [n for n, p in model.named_parameters()]
    model.zero_grad()
    total_loss(output, targets, 0.0, "bce", 0.05)[0].backward()
    routed = {n for n, p in model.named_parameters()
              if n.startswith(("cost.", "group_representation.")) and p.grad is not None
              and float(p.grad.abs().sum()) > 0}
    assert routed  # the critic reaches phi and g ...
    # ... and the triple loss alone does not: no straight-through path into the cost
    model.zero_grad()
    output = model(torch.arange(16), torch.arange(16) % R)
    sum(s.sum() for s in output.head_scores).backward()
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0
               for n, p in model.named_parameters()
               if n.startswith(("cost.", "group_representation.")))
    assert len(names) == len(set(names))


def test_the_critic_learns_to_send_a_relation_to_the_group_planted_as_better() -> None:
    """Group 2 is planted as the best for relation 0 (every other option loses 1 nat more);
    for the other relations the losses carry no preference. Trained on the critic alone, the
    cost sends relation-0 queries to group 2 at evaluation."""
    model = small_model(attention_noise=False).train()
    optimiser = torch.optim.Adam(list(model.cost.parameters())
                                 + list(model.group_representation.parameters()), lr=0.01)
    generator = torch.Generator().manual_seed(1)
    for _ in range(150):
        heads = torch.randint(0, N, (64,), generator=generator)
        relations = torch.randint(0, R, (64,), generator=generator)
        output = model(heads, relations)
        losses = torch.rand(64, 1, GROUPS, generator=generator) * 0.01
        losses[relations == 0] += torch.tensor([1.0, 1.0, 0.0])
        loss = routing_critic_loss(output.routing_signal.cost, losses, 0.05)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        chosen = model(torch.arange(N), torch.zeros(N, dtype=torch.long)).selected[:, 0]
    assert float((chosen == 2).float().mean()) >= 0.9


def cost_spread(kg: MultimodalKG, variant: str, steps: int) -> tuple[float, float]:
    """Mean within-query standard deviation of the routing cost, and the mean cost, after
    ``steps`` training steps on the tiny graph."""
    torch.manual_seed(0)
    config = resolve_config("roam", variant=variant, dim=16, relation_dim=16, expert_hidden=16,
                            cost_hidden=16, num_groups=GROUPS, expert_form="residual")
    model = build_model(config, kg.num_entities, 2 * kg.num_relations, kg.modalities)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    sampler = OneToNSampler.from_kg(kg, 128, seed=0)
    step, epoch = 0, 0
    while step < steps:
        epoch += 1
        sampler.set_epoch(epoch)
        for batch in sampler:
            output = model(batch.queries[:, 0], batch.queries[:, 1])
            loss, _ = total_loss(output, dense_targets(batch, 0.1), config.ot_weight, "softmax",
                                 config.ot_epsilon)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
    cost = output.routing.cost.detach()
    return float(cost.std(dim=-1).mean()), float(cost.mean())


@pytest.mark.slow
def test_the_printed_eq_11_collapses_the_cost_and_the_critic_keeps_a_spread(
        kg: MultimodalKG) -> None:
    paper_spread, paper_level = cost_spread(kg, "paper-ot-loss", 400)
    critic_spread, _ = cost_spread(kg, "full", 400)
    assert paper_level < 0.05 and paper_spread < 1e-3      # every cost at the softplus floor
    assert critic_spread > 10 * paper_spread


def test_sinkhorn_moe_gating_noise_ignores_the_relation() -> None:
    attention = ModalityAttention(2, 4, 3, 1.0, noise=True, use_relation=False).train()
    with torch.no_grad():
        attention.noise_relation.fill_(5.0)
    experts_out = torch.randn(5, 2, 3, 4)
    torch.manual_seed(0)
    one = attention.noise_terms(experts_out, torch.randn(5, 3))
    torch.manual_seed(0)
    other = attention.noise_terms(experts_out, torch.randn(5, 3) * 100)
    assert torch.equal(one, other)


def test_mutual_information_of_labels() -> None:
    x = torch.arange(400) % 4
    assert mutual_information_bits(x, x) == pytest.approx(2.0)
    assert mutual_information_bits(x, x // 2) == pytest.approx(1.0)
    assert mutual_information_bits(x, torch.zeros_like(x)) == pytest.approx(0.0)


def test_routing_diagnostics_describe_the_routing_evaluation_applies(kg: MultimodalKG) -> None:
    config = resolve_config("roam", dim=8, relation_dim=8, expert_hidden=8, cost_hidden=8,
                            num_groups=GROUPS, expert_form="residual")
    model = build_model(config, kg.num_entities, 2 * kg.num_relations, kg.modalities)
    queries = diagnostic_queries(kg.triples("valid"), kg.num_relations, limit=100)
    assert queries.shape == (100, 3)
    assert torch.equal(queries[50:, 1], queries[:50, 1] + kg.num_relations)   # both directions
    first = routing_diagnostics(model, queries, "cpu")
    again = routing_diagnostics(model, queries, "cpu", previous=first.selected)
    assert math.isnan(first.changed) and again.changed == 0.0
    assert sum(first.load) == pytest.approx(1.0) and len(first.load) == GROUPS
    assert 0.0 <= first.oracle_agreement <= 1.0 and first.regret >= 0.0
    assert first.relation_mi_bits >= 0.0 and first.relation_mi_permuted_bits >= 0.0
    # the routed option is the one evaluation uses: its scores equal the model's own
    model.eval()
    with torch.no_grad():
        scores, routing = model.score_every_option(queries[:8, 0], queries[:8, 1])
        own = model(queries[:8, 0], queries[:8, 1]).scores
    chosen = routing.weights.argmax(-1)[:, 0]
    assert torch.allclose(scores[torch.arange(8), 0, chosen], own, atol=1e-5)
    assert set(first.columns()) >= {"oracle_agreement", "routing_regret", "load_0",
                                    "relation_group_mi_bits", "relation_group_mi_permuted_bits",
                                    "routing_changed", "routing_entropy"}
