"""Interactions: how a query and a candidate entity become a score. Pluggable: a model holds an
interaction and asks it for a query vector ``x`` such that ``score(q, t) = x . e_t``; any
interaction of that bilinear-in-the-tail form can replace Tucker without touching the encoders.

Tucker (Balazevic et al. 2019), the scorer of Eq. 10: ``s(h, r, t) = W x1 e_h x2 w_r x3 e_t``,
with TuckER's batch norms and dropouts. The core is contracted with each DISTINCT relation of the
batch once (``U d^3`` instead of ``B d^3``), then applied per query: contracting it per query
makes the ``B d^3`` term dominate a TuckER step.
"""

from __future__ import annotations

import torch
from torch import nn


class TuckerInteraction(nn.Module):
    def __init__(self, dim: int, relation_dim: int, input_dropout: float = 0.3,
                 hidden_dropout1: float = 0.4, hidden_dropout2: float = 0.5) -> None:
        super().__init__()
        self.dim = dim
        self.core = nn.Parameter(torch.empty(relation_dim, dim, dim).uniform_(-1.0, 1.0))
        self.input_norm = nn.BatchNorm1d(dim)
        self.hidden_norm = nn.BatchNorm1d(dim)
        self.input_dropout = nn.Dropout(input_dropout)
        self.hidden_dropout1 = nn.Dropout(hidden_dropout1)
        self.hidden_dropout2 = nn.Dropout(hidden_dropout2)

    def query(self, head: torch.Tensor, relation_vectors: torch.Tensor,
              relation_ids: torch.Tensor) -> torch.Tensor:
        """Query vector ``x = bn(W x1 bn(e_h) x2 w_r)`` ``[B, d]`` for heads ``[B, d]`` and
        relation embeddings ``[B, d_r]`` (rows with equal ``relation_ids`` share ``W_r``).

        TuckER drops out each query's ``W_r``; here the dropout mask is drawn once per distinct
        relation of the batch, the price of contracting the core once per relation."""
        x = self.input_dropout(self.input_norm(head))
        unique, inverse = torch.unique(relation_ids, return_inverse=True)
        first = torch.zeros_like(unique).scatter_reduce(
            0, inverse, torch.arange(len(relation_ids), device=relation_ids.device),
            reduce="amin", include_self=False)
        w_r = (relation_vectors[first] @ self.core.view(self.core.shape[0], -1))
        w_r = self.hidden_dropout1(w_r.view(-1, self.dim, self.dim))
        x = torch.bmm(x.unsqueeze(1), w_r[inverse]).squeeze(1)
        return self.hidden_dropout2(self.hidden_norm(x))


def score_all(query: torch.Tensor, entities: torch.Tensor) -> torch.Tensor:
    """1-N scores ``[B, N]`` of query vectors ``[B, d]`` against entity vectors ``[N, d]``."""
    return query @ entities.T


def score_candidates(query: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Scores ``[B, C]`` of query vectors ``[B, d]`` against per-query candidates ``[B, C, d]``."""
    return torch.einsum("bd,bcd->bc", query, candidates)
