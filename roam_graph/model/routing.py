"""ReGOR: relation-guided OT routing with a learnable cost (Eq. 5-8, 11, 12).

Shapes: B queries, G routers (1 for MoSEG: one decision per query; M for the MGE/SEP ablations:
one decision per modality), O options per router (K groups, or M*K shared experts for SEP).

- ``GroupRepresentation``: g(W^(k)) of Eq. 7, ``P_g(sum_m alpha_m s(theta_m^(k)))`` with
  ``alpha = softmax_m(A(s(theta_m^(k))))``, A a one-hidden-layer MLP and ``s`` the parameter
  summary of experts.py; or learnable prototypes v_k (Eq. 5, the "w/o g" ablation).
- ``relation_conditioned_cost``: c_ik | r = phi(f(e_i, r) || g(W^(k))) of Eq. 6, phi an MLP into
  R+ (softplus); or ``1 - cos`` (Eq. 12, the "w/o phi" ablation).
- ``route``: training routes the batch by the OT plan (Sinkhorn or a Table 10 solver); evaluation
  routes each query on its own (argmin of its cost row minus the balancing prices, or
  softmax((prices - c)/eps) for soft routing), so its scores never depend on which other queries
  share its batch.
- ``routing_critic_loss``: the task signal that trains the cost by default (docs/model.md):
  the cost is fitted to the per-query losses of the options.
- ``BalancingPrices``: running average of the plan's column potentials (the prices that balance
  the groups' loads). The row argmax of a Sinkhorn plan is ``argmin_k (c_ik - price_k)``, so
  evaluation with the prices makes the same decision training made, query by query; without them
  it routes on the raw cost, which can send every query to one group (docs/model.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from roam_graph.model.sinkhorn import (
    plan_from_potentials,
    sinkhorn_potentials,
    solve_plan,
    top_k_plan,
)


class GroupRepresentation(nn.Module):
    def __init__(self, summary_width: int, out_dim: int, hidden: int, routers: int, options: int,
                 kind: str, pool_modalities: bool) -> None:
        super().__init__()
        self.kind = kind
        self.pool_modalities = pool_modalities
        if kind == "dynamic":
            self.attention = nn.Sequential(nn.Linear(summary_width, hidden), nn.ReLU(),
                                           nn.Linear(hidden, 1))          # A of Eq. 7
            self.project = nn.Linear(summary_width, out_dim)               # fixed-size summary
        else:
            self.prototypes = nn.Parameter(torch.randn(routers, options, out_dim) * 0.1)

    def forward(self, summaries: torch.Tensor) -> torch.Tensor:
        """``summaries [M, O, S]`` (one per modality expert of each option) -> ``[G, O, d_g]``."""
        if self.kind != "dynamic":
            return self.prototypes
        if self.pool_modalities:  # MoSEG: one representation per group, Eq. 7
            alpha = torch.softmax(self.attention(summaries).squeeze(-1), dim=0)   # [M, O]
            pooled = (alpha.unsqueeze(-1) * summaries).sum(dim=0, keepdim=True)   # [1, O, S]
            return self.project(pooled)
        return self.project(summaries)                                          # [M, O, d_g]

    def modality_attention(self, summaries: torch.Tensor) -> torch.Tensor | None:
        """alpha of Eq. 7, ``[M, O]`` (None for prototypes)."""
        if self.kind != "dynamic" or not self.pool_modalities:
            return None
        return torch.softmax(self.attention(summaries).squeeze(-1), dim=0)


class RelationConditionedCost(nn.Module):
    """phi of Eq. 6 (learned, into R+) or ``1 - cos`` (Eq. 12)."""

    def __init__(self, query_dim: int, group_dim: int, hidden: int, kind: str) -> None:
        super().__init__()
        self.kind = kind
        if kind == "learned":
            # phi's first layer is linear in [q || g]: split it so the group half runs once
            self.query_layer = nn.Linear(query_dim, hidden)
            self.group_layer = nn.Linear(group_dim, hidden, bias=False)
            self.output = nn.Linear(hidden, 1)
        elif query_dim != group_dim:
            raise ValueError(f"cosine cost needs equal widths, got {query_dim} and {group_dim}")

    def forward(self, queries: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """``queries [B, G, O or 1, d_q]`` and ``groups [G, O, d_g]`` -> costs ``[B, G, O]``."""
        if self.kind == "learned":
            hidden = torch.relu(self.query_layer(queries) + self.group_layer(groups))
            return F.softplus(self.output(hidden).squeeze(-1))
        return 1.0 - F.cosine_similarity(queries, groups.unsqueeze(0), dim=-1)


@dataclass(frozen=True)
class Routing:
    """One routing decision per (query, router); see ``route``."""
    weights: torch.Tensor        # [B, G, O] weight of each option (one-hot-like when top1)
    cost: torch.Tensor           # [B, G, O]
    plan: torch.Tensor | None    # [B, G, O] OT plan (training), rows scaled to sum to 1
    ot_loss: torch.Tensor        # scalar: <P, C> + eps * sum P log P (Eq. 11), 0 at evaluation
    prices: torch.Tensor | None = None   # [G, O] this batch's balancing prices (training)


def centre_costs(cost: torch.Tensor) -> torch.Tensor:
    """Per-query centred costs ``c_ik - mean_k c_ik`` (scale control, docs/model.md).

    A plan row is ``softmax_k((price_k - c_ik) / eps)``: adding a constant to a query's costs
    changes nothing but ``<P, C>``, so routing on centred costs removes the one direction in
    which Eq. 11 can lower its value without changing any decision (the collapse of every cost
    to the softplus floor)."""
    return cost - cost.mean(dim=-1, keepdim=True)


def ot_loss(plan: torch.Tensor, cost: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Eq. 11 for a plan of total mass 1 per router, averaged over routers."""
    entropy_term = (plan * torch.log(plan.clamp_min(1e-30))).sum(dim=(0, 2))
    transport = (plan * cost).sum(dim=(0, 2))
    return (transport + epsilon * entropy_term).mean()


def routing_critic_loss(cost: torch.Tensor, option_losses: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """The task signal for the learned cost (our addition to Eq. 6-11; docs/model.md).

    ``option_losses [S, G, O]`` is each query's training loss had it been routed to each option
    (scored without gradient); ``cost [S, G, O]`` its cost. The loss is
    ``KL(softmax(-l / T) || softmax(-c / T))`` per query and router, averaged: it fits the
    router's own preference (the plan row before the balancing prices) to the Boltzmann
    distribution of the options' losses, so that the cost orders options as their losses do and,
    centred, ``c_ik`` approximates ``l_ik - mean_k l_ik``. ``<P, C>`` of Eq. 11 then is the
    plan's expected (centred) loss: a cost that "incorporates downstream objectives"."""
    target = torch.log_softmax(-option_losses.detach().float() / temperature, dim=-1)
    predicted = torch.log_softmax(-cost.float() / temperature, dim=-1)
    return (target.exp() * (target - predicted)).sum(dim=-1).mean()


class BalancingPrices(nn.Module):
    """Running estimate of ``price_k = epsilon * g_k``, g the Sinkhorn column potentials of the
    training batches' costs (one row per router), centred to mean 0 over options.

    A plan row is ``P_ik / sum_k P_ik = softmax_k((price_k - c_ik) / epsilon)``: the batch's plan
    routes query i to ``argmin_k (c_ik - price_k)``. With the prices of the whole training
    distribution (estimated like BatchNorm's running statistics: a cumulative mean for the first
    ``1 / momentum`` batches, then an exponential one) this rule is the semi-discrete OT assignment
    of one query on its own: balanced like training, independent of the other queries."""

    def __init__(self, routers: int, options: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("prices", torch.zeros(routers, options))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def fold(self, price: torch.Tensor) -> None:
        """Fold in one training batch's prices ``[G, O]`` (``Routing.prices``)."""
        self.batches += 1
        # on the device: reading the count on the host would stall a GPU every step
        rate = (1.0 / self.batches.to(self.prices.dtype)).clamp_min(self.momentum)
        self.prices.lerp_(price.to(self.prices.dtype), rate)


def balancing_prices(cost: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    """Centred prices ``[G, O]`` of plain Sinkhorn on costs ``[B, G, O]`` (no gradient)."""
    with torch.no_grad():
        _, g = sinkhorn_potentials(cost.detach().transpose(0, 1), epsilon, iterations)
    return centred_prices(g, epsilon)


def centred_prices(g: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``epsilon * g`` centred over options: the prices a plan row subtracts from the cost."""
    return epsilon * (g - g.mean(dim=-1, keepdim=True))


def _evaluation_routing(cost: torch.Tensor, solver: str, epsilon: float, mode: str,
                        prices: torch.Tensor | None) -> Routing:
    """Per query, no batch coupling (``route``)."""
    if solver == "tksr":  # per query, no OT: the same top-2 rule as in training
        weights = top_k_plan(cost.transpose(0, 1), k=2, temperature=epsilon).transpose(0, 1)
        return Routing(weights * cost.shape[0], cost, None, cost.new_zeros(()))
    shifted = cost if prices is None else cost - prices.to(cost.dtype)
    if mode == "top1":
        weights = F.one_hot(shifted.argmin(dim=-1), cost.shape[-1]).to(cost.dtype)
    else:
        weights = torch.softmax(-shifted / epsilon, dim=-1)
    return Routing(weights, cost, None, cost.new_zeros(()))


def _training_plan(cost: torch.Tensor, solver: str, epsilon: float, iterations: int
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The plan ``[B, G, O]`` and the batch's balancing prices. Plain Sinkhorn: ONE solve
    gives both (the plan is ``exp(-C/eps + f_i + g_k)``, the prices ``eps * g``). The Table 10
    solvers take the prices of plain Sinkhorn on the unmodified cost (TKSR has none)."""
    per_router = cost.transpose(0, 1)
    if solver == "sinkhorn":
        f, g = sinkhorn_potentials(per_router, epsilon, iterations)
        prices = centred_prices(g, epsilon)
        return plan_from_potentials(per_router, f, g, epsilon).transpose(0, 1), prices.detach()
    plan = solve_plan(per_router, solver, epsilon, iterations).transpose(0, 1)
    prices = None if solver == "tksr" else balancing_prices(cost, epsilon, iterations)
    return plan, prices


def anneal_mixture(rows: torch.Tensor, hard: torch.Tensor, hardness: float) -> torch.Tensor:
    """Soft-to-hard routing weights (``routing: anneal``; ours, docs/model.md): every group
    is trained on every query while ``hardness`` is low, as in soft routing, so no group starts
    from a quarter of the data; the mixture then hardens into the top-1 routing that evaluation
    uses. ``rows`` carry their gradient (straight-through) when the printed Eq. 11 trains the
    cost."""
    return (1.0 - hardness) * rows + hardness * (hard + rows - rows.detach())


def route(cost: torch.Tensor, solver: str, epsilon: float, iterations: int, mode: str,
          training: bool, prices: torch.Tensor | None = None,
          straight_through: bool = True, hardness: float = 1.0) -> Routing:
    """Turn costs ``[B, G, O]`` into option weights.

    Training: the OT plan over the batch (per router); ``top1`` keeps each row's best option,
    ``soft`` uses the plan rows. With ``straight_through`` (the paper's reading: the triple loss
    trains the cost) the weights carry the plan's gradient (value unchanged); without it they are
    constants, and only ``routing_critic_loss`` trains the cost.
    ``anneal`` mixes the two: ``(1 - hardness) * plan row + hardness * top-1`` (``hardness`` goes
    from 0 to 1 during training, ``anneal_mixture``).
    Evaluation: per query, argmin of ``c - prices`` (``top1``, ``anneal``) or
    ``softmax((prices - c) / eps)`` (``soft``); ``prices [G, O]`` (``BalancingPrices``) default
    to 0, i.e. the raw cost."""
    if not training:
        return _evaluation_routing(cost, solver, epsilon, "soft" if mode == "soft" else "top1",
                                   prices)
    with torch.autocast(device_type=cost.device.type, enabled=False):  # the plan needs fp32
        plan, batch_prices = _training_plan(cost.float(), solver, epsilon, iterations)
    rows = plan / plan.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    carried = rows if straight_through else rows.detach()
    hard = F.one_hot(rows.argmax(dim=-1), cost.shape[-1]).to(cost.dtype)
    if mode == "top1" or (mode == "anneal" and hardness >= 1.0):
        weights = hard + carried - carried.detach()      # straight-through estimator
    elif mode == "anneal":
        weights = anneal_mixture(carried, hard, hardness)
    else:
        weights = carried
    return Routing(weights, cost, rows, ot_loss(plan, cost, epsilon), batch_prices)
