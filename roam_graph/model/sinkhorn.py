"""Entropic optimal transport for routing (Eq. 1, solved as in Cuturi 2013), and the three
alternative solvers of the paper's Table 10 (TKSR, SOT, LOT).

All solvers take a cost ``[..., B, K]`` (B queries, K expert groups; leading dims are independent
problems) and return a transport plan of the same shape whose total mass is 1 per problem, with
uniform marginals ``1/B`` over queries and ``1/K`` over groups. Iterations run in the log domain,
in fp32, for a fixed number of steps, and are differentiable (autograd through the iterations).
"""

from __future__ import annotations

import math

import torch


def sinkhorn_potentials(cost: torch.Tensor, epsilon: float, iterations: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-domain dual potentials ``(f [..., B], g [..., K])`` after ``iterations`` Sinkhorn
    steps, in fp32: the plan is ``exp(-C / epsilon + f_i + g_k)``. ``epsilon * g_k`` is the
    price of group k that balances the groups' loads (routing.py uses it at evaluation)."""
    cost = cost.float()
    queries, groups = cost.shape[-2], cost.shape[-1]
    log_a = -math.log(queries)
    log_b = -math.log(groups)
    kernel = -cost / epsilon
    f = torch.zeros(cost.shape[:-1], dtype=cost.dtype, device=cost.device)
    g = torch.zeros((*cost.shape[:-2], groups), dtype=cost.dtype, device=cost.device)
    for _ in range(iterations):
        f = log_a - torch.logsumexp(kernel + g.unsqueeze(-2), dim=-1)
        g = log_b - torch.logsumexp(kernel + f.unsqueeze(-1), dim=-2)
    return f, g


def sinkhorn_log(cost: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    """Entropic OT plan ``argmin_P <P, C> + epsilon * sum P log P`` with uniform marginals
    (Eq. 1 with the entropy term of Eq. 11), by ``iterations`` log-domain Sinkhorn steps.

    Log-domain updates stay finite at small ``epsilon`` where the plain version overflows."""
    f, g = sinkhorn_potentials(cost, epsilon, iterations)
    return plan_from_potentials(cost, f, g, epsilon)


def plan_from_potentials(cost: torch.Tensor, f: torch.Tensor, g: torch.Tensor,
                         epsilon: float) -> torch.Tensor:
    """The entropic plan ``exp(-C / epsilon + f_i + g_k)`` of potentials ``(f, g)``."""
    plan = torch.exp(-cost.float() / epsilon + f.unsqueeze(-1) + g.unsqueeze(-2))
    return plan.to(cost.dtype)


def top_k_plan(cost: torch.Tensor, k: int = 2, temperature: float = 1.0) -> torch.Tensor:
    """TKSR (Table 10): no OT; each query goes to its ``k`` lowest-cost groups, weighted by a
    softmax of the negative costs over those ``k`` (Shazeer et al. 2017). Rows sum to ``1/B``."""
    k = min(k, cost.shape[-1])
    lowest = torch.topk(-cost, k, dim=-1)
    weights = torch.softmax(lowest.values / temperature, dim=-1)
    plan = torch.zeros_like(cost).scatter(-1, lowest.indices, weights)
    return plan / cost.shape[-2]


def sparse_sinkhorn(cost: torch.Tensor, epsilon: float, iterations: int,
                    threshold: float = 0.1) -> torch.Tensor:
    """SOT (Table 10, after Liu et al. 2023): Sinkhorn on a cost whose entries above
    ``threshold`` are masked out. Costs are min-max normalised per query first, so the threshold
    is scale-free; each query's lowest-cost group always stays available."""
    low = cost.amin(dim=-1, keepdim=True)
    spread = (cost.amax(dim=-1, keepdim=True) - low).clamp_min(1e-12)
    normalised = (cost - low) / spread
    masked = cost.masked_fill(normalised > threshold, 1e4 * epsilon)
    return sinkhorn_log(masked, epsilon, iterations)


def low_rank_sinkhorn(cost: torch.Tensor, epsilon: float, iterations: int,
                      rank: int | None = None) -> torch.Tensor:
    """LOT (Table 10, after Scetbon et al. 2021): Sinkhorn on a rank-``rank`` approximation of
    the cost (truncated SVD) with half the iterations."""
    rank = rank or max(1, cost.shape[-1] // 2)
    u, s, vh = torch.linalg.svd(cost.float(), full_matrices=False)
    approx = (u[..., :rank] * s[..., None, :rank]) @ vh[..., :rank, :]
    return sinkhorn_log(approx.to(cost.dtype), epsilon, max(1, iterations // 2))


SOLVERS = ("sinkhorn", "tksr", "sot", "lot")


def solve_plan(cost: torch.Tensor, solver: str, epsilon: float, iterations: int) -> torch.Tensor:
    """Dispatch on the solver name (Table 10)."""
    if solver == "sinkhorn":
        return sinkhorn_log(cost, epsilon, iterations)
    if solver == "tksr":
        return top_k_plan(cost, k=2, temperature=epsilon)
    if solver == "sot":
        return sparse_sinkhorn(cost, epsilon, iterations)
    if solver == "lot":
        return low_rank_sinkhorn(cost, epsilon, iterations)
    raise ValueError(f"unknown OT solver {solver!r}; choose one of {', '.join(SOLVERS)}")
