"""Does routing carry information? Diagnostics computed at every validation on a fixed set of
validation queries (docs/model.md, "Routing diagnostics"):

- oracle agreement: the fraction of queries routed to the option with the lowest loss (chance
  1/O); regret: the mean of ``loss(routed) - min_k loss(k)``. The loss of a query under an option
  is the cross-entropy of its true tail among all entities, scored as at evaluation.
- mutual information between the query's relation and its option (bits), and the same with the
  relations permuted over the queries: the control, i.e. the plug-in estimator's bias at this
  sample size. Information carried by routing is the difference.
- the share of queries whose option changed since the previous validation, each option's load,
  the entropy of the load and the mean entropy of a query's routing distribution
  ``softmax((prices - c) / eps)`` (the rule evaluation applies).

Queries are routed as at evaluation, each on its own, in both directions (tail and head
prediction through the reciprocal relations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from roam_graph.model.introspection import entropy
from roam_graph.model.roam import RoamModel

DIAGNOSTIC_QUERIES = 2048
PERMUTATION_SEED = 0


@dataclass(frozen=True)
class RoutingDiagnostics:
    oracle_agreement: float
    regret: float
    relation_mi_bits: float
    relation_mi_permuted_bits: float
    changed: float               # NaN at the first validation (nothing to compare with)
    load: tuple[float, ...]      # per option (first router)
    load_entropy: float          # nats
    query_entropy: float         # nats, mean over queries
    selected: torch.Tensor       # int64 [n]: option of the first router per query

    def columns(self) -> dict[str, float]:
        """Flat columns for history.csv and metrics.json."""
        return {"oracle_agreement": self.oracle_agreement, "routing_regret": self.regret,
                "relation_group_mi_bits": self.relation_mi_bits,
                "relation_group_mi_permuted_bits": self.relation_mi_permuted_bits,
                "routing_changed": self.changed, "routing_entropy": self.load_entropy,
                "query_routing_entropy": self.query_entropy,
                **{f"load_{k}": v for k, v in enumerate(self.load)}}


def diagnostic_queries(triples: torch.Tensor, num_relations: int,
                       limit: int = DIAGNOSTIC_QUERIES) -> torch.Tensor:
    """``[n, 3]`` queries ``(head, relation, answer)``: the first ``limit // 2`` triples as
    tail queries and the same triples as head queries through relation ``r + R``."""
    first = triples[: limit // 2]
    reverse = torch.stack([first[:, 2], first[:, 1] + num_relations, first[:, 0]], dim=1)
    return torch.cat([first, reverse])


def mutual_information_bits(x: torch.Tensor, y: torch.Tensor) -> float:
    """Plug-in mutual information (bits) of two int64 label vectors of equal length."""
    _, x = torch.unique(x, return_inverse=True)
    _, y = torch.unique(y, return_inverse=True)
    joint = torch.zeros(int(x.max()) + 1, int(y.max()) + 1, dtype=torch.float64)
    joint.index_put_((x, y), torch.ones(len(x), dtype=torch.float64), accumulate=True)
    joint /= joint.sum()
    outer = joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
    mask = joint > 0
    return float((joint[mask] * torch.log2(joint[mask] / outer[mask])).sum())


@torch.inference_mode()
def option_losses(model: RoamModel, queries: torch.Tensor, device: torch.device | str,
                  batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per query: cross-entropy of the answer under every option ``[n, G, O]``, the options
    chosen ``[n, G]`` and the routing costs ``[n, G, O]`` (eval mode)."""
    encoding = model.encode_entities()
    losses, chosen, costs = [], [], []
    for batch in queries.split(batch_size):
        batch = batch.to(device)
        scores, routing = model.score_every_option(batch[:, 0], batch[:, 1], encoding)
        log_p = torch.log_softmax(scores.float(), dim=-1)
        answer = batch[:, 2].view(-1, 1, 1, 1).expand(*log_p.shape[:3], 1)
        losses.append(-log_p.gather(-1, answer).squeeze(-1))
        chosen.append(routing.weights.argmax(dim=-1))
        costs.append(routing.cost)
    return torch.cat(losses).cpu(), torch.cat(chosen).cpu(), torch.cat(costs).cpu()


def routing_diagnostics(model: RoamModel, queries: torch.Tensor, device: torch.device | str,
                        previous: torch.Tensor | None = None) -> RoutingDiagnostics:
    """The diagnostics of the module docstring for ``queries [n, 3]``; ``previous``: the
    ``selected`` of the last validation (for ``changed``)."""
    was_training = model.training
    model.eval()
    try:
        losses, chosen, cost = option_losses(model, queries, device)
    finally:
        model.train(was_training)
    routed = losses.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)              # [n, G]
    best = losses.min(dim=-1)
    relations, first = queries[:, 1], chosen[:, 0]
    generator = torch.Generator().manual_seed(PERMUTATION_SEED)
    permuted = relations[torch.randperm(len(relations), generator=generator)]
    options = cost.shape[-1]
    load = torch.bincount(first, minlength=options).double() / len(first)
    prices = model.prices.prices.cpu() if model.prices is not None else 0.0
    distribution = torch.softmax((prices - cost.double()) / model.config.ot_epsilon, dim=-1)
    changed = (float((previous != first).double().mean())
               if previous is not None and len(previous) == len(first) else math.nan)
    return RoutingDiagnostics(
        oracle_agreement=float((chosen == losses.argmin(dim=-1)).double().mean()),
        regret=float((routed - best.values).double().mean()),
        relation_mi_bits=mutual_information_bits(relations, first),
        relation_mi_permuted_bits=mutual_information_bits(permuted, first),
        changed=changed, load=tuple(load.tolist()), load_entropy=float(entropy(load)),
        query_entropy=float(entropy(distribution).mean()), selected=first)
