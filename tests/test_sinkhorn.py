"""Routing solvers: Sinkhorn plans have the right marginals, agree with POT, stay finite at small
epsilon and are differentiable; the Table 10 alternatives produce valid plans."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from roam_graph.model.sinkhorn import SOLVERS, sinkhorn_log, solve_plan, top_k_plan


def test_plan_has_uniform_marginals() -> None:
    cost = torch.rand(3, 40, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    plan = sinkhorn_log(cost, epsilon=0.1, iterations=300)
    assert torch.allclose(plan.sum(dim=-1), torch.full((3, 40), 1 / 40, dtype=torch.float64))
    assert torch.allclose(plan.sum(dim=-2), torch.full((3, 5), 1 / 5, dtype=torch.float64))


def test_plan_agrees_with_pot_log_domain_solver() -> None:
    ot = pytest.importorskip("ot")
    cost = torch.rand(64, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = sinkhorn_log(cost, epsilon=0.05, iterations=3000).numpy()
    reference = ot.sinkhorn(np.full(64, 1 / 64), np.full(6, 1 / 6), cost.numpy(), 0.05,
                            method="sinkhorn_log", numItermax=3000, stopThr=1e-14)
    assert np.abs(ours - reference).max() < 1e-6


def test_small_epsilon_stays_finite() -> None:
    cost = torch.rand(128, 8, generator=torch.Generator().manual_seed(2)) * 10
    plan = sinkhorn_log(cost, epsilon=1e-3, iterations=50)
    assert torch.isfinite(plan).all() and abs(float(plan.sum()) - 1.0) < 1e-3


def test_plan_is_differentiable_in_the_cost() -> None:
    cost = torch.rand(16, 4, requires_grad=True)
    plan = sinkhorn_log(cost, epsilon=0.1, iterations=20)
    (plan * cost).sum().backward()
    assert cost.grad is not None and torch.isfinite(cost.grad).all()
    assert cost.grad.abs().sum() > 0


def test_top_k_routing_uses_exactly_the_two_cheapest_groups() -> None:
    cost = torch.tensor([[0.1, 0.9, 0.2, 0.8], [0.5, 0.4, 0.3, 0.0]])
    plan = top_k_plan(cost, k=2)
    assert (plan > 0).sum(dim=-1).tolist() == [2, 2]
    assert plan[0, [0, 2]].gt(0).all() and plan[1, [2, 3]].gt(0).all()
    assert torch.allclose(plan.sum(dim=-1), torch.full((2,), 0.5))


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_returns_a_plan_of_mass_one(solver: str) -> None:
    cost = torch.rand(32, 5, generator=torch.Generator().manual_seed(3))
    plan = solve_plan(cost, solver, epsilon=0.05, iterations=20)
    assert plan.shape == cost.shape and (plan >= 0).all()
    assert abs(float(plan.sum()) - 1.0) < 1e-4


def test_unknown_solver_is_named() -> None:
    with pytest.raises(ValueError, match="unknown OT solver 'hungarian'"):
        solve_plan(torch.rand(4, 2), "hungarian", 0.1, 5)
