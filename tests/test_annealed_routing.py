"""Soft-to-hard routing (``routing: anneal``, docs/model.md): training starts as the soft plan
mixture, hardens linearly into top-1 over ``anneal_fraction`` of the epochs, and evaluation is
top-1 throughout."""

from __future__ import annotations

import pytest
import torch

from roam_graph.data import Modality
from roam_graph.model import resolve_config
from roam_graph.model.roam import RoamModel
from roam_graph.model.routing import route

EPSILON, ITERATIONS = 0.05, 50


def cost(queries: int = 12, groups: int = 3) -> torch.Tensor:
    return torch.rand(queries, 1, groups, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("hardness", [0.0, 0.3, 1.0])
def test_training_weights_mix_the_plan_rows_and_top1(hardness: float) -> None:
    c = cost()
    soft = route(c, "sinkhorn", EPSILON, ITERATIONS, "soft", training=True)
    top1 = route(c, "sinkhorn", EPSILON, ITERATIONS, "top1", training=True)
    mixed = route(c, "sinkhorn", EPSILON, ITERATIONS, "anneal", training=True,
                  hardness=hardness)
    expected = (1 - hardness) * soft.weights + hardness * top1.weights
    assert torch.allclose(mixed.weights, expected, atol=1e-6)
    assert torch.allclose(mixed.weights.sum(-1), torch.ones(12, 1), atol=1e-5)


def test_evaluation_routes_top1_whatever_the_hardness() -> None:
    c = cost()
    for hardness in (0.0, 0.5):
        routing = route(c, "sinkhorn", EPSILON, ITERATIONS, "anneal", training=False,
                        hardness=hardness)
        assert torch.equal(routing.weights,
                           torch.nn.functional.one_hot(c.argmin(-1), 3).to(c.dtype))


def model(fraction: float) -> RoamModel:
    config = resolve_config("roam", dim=8, relation_dim=8, expert_hidden=8, cost_hidden=8,
                            num_groups=3, routing="anneal", anneal_fraction=fraction,
                            attention_noise=False)   # equal queries then route alike
    present = torch.ones(30, dtype=torch.bool)
    return RoamModel(config, 30, 8, {"text": Modality(torch.randn(30, 5), present)})


def test_hardness_rises_from_zero_to_one_over_the_annealed_share_of_epochs() -> None:
    roam = model(fraction=0.5)
    seen = []
    for epoch in range(1, 11):
        roam.begin_epoch(epoch, 10)
        seen.append(roam.routing_hardness)
    assert seen == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0])


def test_an_annealing_step_trains_every_group_and_a_hard_one_only_the_chosen() -> None:
    roam = model(fraction=1.0).train()
    heads, relations = torch.arange(6), torch.arange(6) % 8

    def expert_gradients(hardness: float) -> torch.Tensor:
        roam.zero_grad()
        roam.routing_hardness = hardness
        roam(heads[:1].repeat(2), relations[:1].repeat(2)).scores.sum().backward()  # batch norm: 2
        return roam.experts.w1.grad.abs().sum(dim=(1, 2))      # per expert (modality x group)

    assert bool((expert_gradients(0.0) > 0).all())            # every group learns from the query
    assert int((expert_gradients(1.0)[3:] > 0).sum()) == 1     # text experts: the chosen group
