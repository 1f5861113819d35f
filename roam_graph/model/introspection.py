"""Routing introspection: for any queries, the chosen group, the cost, the routing entropy and
each group's modality weights - the raw material of the paper's Figures 2, 5 and 6.

Queries are routed as at evaluation (each on its own), so a report does not depend on batching.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from roam_graph.model.contract import KGModel
from roam_graph.model.roam import RoamModel


@dataclass(frozen=True)
class RoutingReport:
    selected: torch.Tensor               # int64 [n, G] chosen option per query (and router)
    cost: torch.Tensor                   # [n, G, O]
    usage: torch.Tensor                  # [G, O] fraction of queries routed to each option
    usage_entropy: float                 # Shannon entropy (nats) of ``usage``, mean over routers
    mean_query_entropy: float            # mean entropy of softmax(-c / eps) per query
    modality_weights: torch.Tensor       # [n, M] attention over modalities of the chosen option
    group_modality_weights: torch.Tensor  # [O, M] mean modality weights of queries per option
    relation_usage: torch.Tensor         # [2R, O] how often each relation picked each option
    group_alpha: torch.Tensor | None     # [M, O] alpha of Eq. 7 (dynamic groups only)
    modality_names: tuple[str, ...]


def entropy(probabilities: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return -(probabilities * torch.log(probabilities.clamp_min(1e-30))).sum(dim=dim)


@torch.inference_mode()
def routing_report(model: KGModel, heads: torch.Tensor, relations: torch.Tensor,
                   device: torch.device | str = "cpu", batch_size: int = 1024
                   ) -> RoutingReport | None:
    """Route ``(heads, relations)`` queries; None for models without routing (Tucker, MoMoK)."""
    if not isinstance(model, RoamModel):
        return None
    was_training = model.training
    model.eval()
    selected, costs, weights = [], [], []
    for start in range(0, len(heads), batch_size):
        h = heads[start:start + batch_size].to(device)
        r = relations[start:start + batch_size].to(device)
        output = model(h, r, candidates=h[:, None])     # one candidate: cheap, routing is the same
        selected.append(output.selected)
        costs.append(output.routing.cost)
        weights.append(output.modality_weights)
    model.train(was_training)
    selected_all, cost, modality = torch.cat(selected), torch.cat(costs), torch.cat(weights)
    options = cost.shape[-1]
    usage = torch.stack([torch.bincount(selected_all[:, g], minlength=options)
                         for g in range(selected_all.shape[1])]).float()
    usage = usage / usage.sum(dim=-1, keepdim=True)
    # the rule evaluation applies: softmax((prices - c) / eps), not the raw cost
    prices = model.prices.prices if model.prices is not None else 0.0
    query_distribution = torch.softmax((prices - cost) / model.config.ot_epsilon, dim=-1)
    first = selected_all[:, 0]
    counts = torch.bincount(first, minlength=options).clamp_min(1).float()
    group_weights = torch.zeros(options, modality.shape[1], device=modality.device)
    group_weights.index_add_(0, first, modality)
    relation_usage = torch.zeros(model.relations.num_embeddings, options, device=cost.device)
    relation_usage.index_put_((relations.to(cost.device), first),
                              torch.ones_like(first, dtype=torch.float), accumulate=True)
    summaries = model.experts.parameter_summary()[model.expert_of]
    alpha = model.group_representation.modality_attention(summaries)
    return RoutingReport(selected_all, cost, usage, float(entropy(usage).mean()),
                         float(entropy(query_distribution).mean()), modality,
                         group_weights / counts[:, None], relation_usage, alpha,
                         tuple(model.modality_names))


def entity_modality_weights(model: KGModel, entities: torch.Tensor
                            ) -> tuple[torch.Tensor, tuple[str, ...]] | None:
    """MoMoK's relation-free joint attention over modalities per entity ``[n, M]`` (Fig. 6);
    None for models without one."""
    weights = model.entity_modality_weights(entities)
    return None if weights is None else (weights, tuple(model.modality_names))
