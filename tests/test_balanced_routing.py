"""Evaluation routing with balancing prices (routing.BalancingPrices, docs/model.md "Routing"):
one query on its own makes the choice the training plan made for it, the prices come from the
Sinkhorn potentials, evaluation stays independent of the batch."""

from __future__ import annotations

import pytest
import torch

from roam_graph.data import Modality
from roam_graph.model import resolve_config
from roam_graph.model.roam import RoamModel
from roam_graph.model.routing import BalancingPrices, balancing_prices, route
from roam_graph.model.sinkhorn import sinkhorn_log, sinkhorn_potentials

EPSILON, ITERATIONS = 0.05, 50
N, R = 40, 6


def features() -> dict[str, Modality]:
    generator = torch.Generator().manual_seed(0)
    image_present = torch.rand(N, generator=generator) > 0.3
    image = torch.randn(N, 7, generator=generator) * image_present[:, None]
    return {"image": Modality(image, image_present)}


def skewed_cost(queries: int = 60, groups: int = 3) -> torch.Tensor:
    """Costs ``[B, 1, K]`` where group 0 is the cheapest for every query."""
    generator = torch.Generator().manual_seed(0)
    cost = torch.rand(queries, 1, groups, generator=generator)
    cost[:, :, 1:] += 1.0
    return cost


def test_sinkhorn_plan_is_the_exponential_of_its_potentials() -> None:
    cost = skewed_cost()[:, 0]
    f, g = sinkhorn_potentials(cost, EPSILON, ITERATIONS)
    plan = torch.exp(-cost / EPSILON + f[:, None] + g[None, :])
    assert torch.allclose(plan, sinkhorn_log(cost, EPSILON, ITERATIONS))


def test_prices_make_per_query_routing_repeat_the_training_plans_choice() -> None:
    cost = skewed_cost()
    prices = BalancingPrices(routers=1, options=3)
    prices.fold(balancing_prices(cost, EPSILON, ITERATIONS))
    training = route(cost, "sinkhorn", EPSILON, ITERATIONS, "top1", training=True)
    balanced = route(cost, "sinkhorn", EPSILON, ITERATIONS, "top1", training=False,
                     prices=prices.prices)
    raw = route(cost, "sinkhorn", EPSILON, ITERATIONS, "top1", training=False)
    chosen = training.weights.argmax(-1)
    assert torch.equal(balanced.weights.argmax(-1), chosen)
    assert torch.bincount(chosen.flatten(), minlength=3).min() > 0     # the plan spreads load
    assert torch.equal(raw.weights.argmax(-1), torch.zeros_like(chosen))  # raw cost does not
    # soft evaluation reproduces the plan's normalised rows
    soft = route(cost, "sinkhorn", EPSILON, ITERATIONS, "soft", training=False,
                 prices=prices.prices)
    assert torch.allclose(soft.weights, training.plan, atol=1e-5)
    # one solve: the training routing carries the very prices of its own plan
    assert torch.allclose(training.prices, prices.prices, atol=1e-6)


def test_training_routing_solves_sinkhorn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from roam_graph.model import routing as routing_module
    calls = []
    original = routing_module.sinkhorn_potentials

    def counting(*args: object) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(routing_module, "sinkhorn_potentials", counting)
    model = small_model().train()
    model(torch.arange(16), torch.arange(16) % R)
    assert len(calls) == 1 and int(model.prices.batches) == 1


def test_prices_start_as_a_cumulative_mean_and_are_centred() -> None:
    prices = BalancingPrices(routers=1, options=3, momentum=0.1)
    first, second = skewed_cost(), skewed_cost().flip(-1)
    prices.fold(balancing_prices(first, EPSILON, ITERATIONS))
    after_one = prices.prices.clone()
    prices.fold(balancing_prices(second, EPSILON, ITERATIONS))
    _, g1 = sinkhorn_potentials(first.transpose(0, 1), EPSILON, ITERATIONS)
    _, g2 = sinkhorn_potentials(second.transpose(0, 1), EPSILON, ITERATIONS)
    expected = EPSILON * ((g1 - g1.mean()) + (g2 - g2.mean())) / 2
    assert torch.allclose(prices.prices, expected, atol=1e-6)
    assert torch.allclose(after_one.sum(-1), torch.zeros(1), atol=1e-6)
    assert int(prices.batches) == 2


def small_model(**settings: object) -> RoamModel:
    torch.manual_seed(0)
    config = resolve_config("roam", dim=12, relation_dim=8, expert_hidden=10, cost_hidden=9,
                            num_groups=3, attention_noise=False, **settings)
    return RoamModel(config, N, R, features())


def test_model_routes_alone_at_evaluation_as_the_training_plan_did() -> None:
    model = small_model().train()
    heads, relations = torch.arange(N), torch.arange(N) % R
    with torch.no_grad():
        trained_choice = model(heads, relations).selected       # also updates the prices
        model.eval()
        alone = torch.cat([model(heads[i : i + 1], relations[i : i + 1]).selected
                           for i in range(N)])
    assert torch.equal(alone, trained_choice)
    assert float(model.prices.prices.abs().sum()) > 0


@pytest.mark.parametrize("routing", ["top1", "soft"])
def test_balanced_evaluation_scores_do_not_depend_on_the_rest_of_the_batch(routing: str) -> None:
    model = small_model(routing=routing).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randint(0, N, (16,)), torch.randint(0, R, (16,)))
        model.eval()
        heads, relations = torch.arange(20), torch.arange(20) % R
        together = model(heads, relations).scores
        alone = torch.cat([model(heads[i : i + 1], relations[i : i + 1]).scores
                           for i in range(20)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_evaluation_never_updates_the_prices() -> None:
    model = small_model().eval()
    with torch.no_grad():
        model(torch.arange(10), torch.arange(10) % R)
    assert int(model.prices.batches) == 0 and float(model.prices.prices.abs().sum()) == 0


def test_raw_cost_routing_and_tksr_keep_no_prices() -> None:
    assert small_model(eval_routing="cost").prices is None
    assert small_model(variant="tksr").prices is None
    with pytest.raises(ValueError, match="eval_routing='nearest' is not one of balanced, cost"):
        resolve_config("roam", eval_routing="nearest")
