"""Interactions: how a query and a candidate entity become a score. Pluggable: a model holds an
interaction and asks it for a query vector ``x`` such that ``score(q, t) = x . e_t``; any
interaction of that bilinear-in-the-tail form can replace Tucker without touching the encoders.

Tucker (Balazevic et al. 2019), the scorer of Eq. 10: ``s(h, r, t) = W x1 e_h x2 w_r x3 e_t``,
with TuckER's batch norms and dropouts. The core is contracted with each DISTINCT relation of the
batch once (``U d^3`` instead of ``B d^3``), then applied per query: contracting it per query
makes the ``B d^3`` term dominate a TuckER step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class RelationGroups:
    """The distinct relations of a batch of queries: ``unique [U]`` and, per query, its row in
    ``unique`` (``inverse [B]``). Tucker contracts its core once per distinct relation. Finding
    them takes ``torch.unique``, whose output size depends on the data: on a GPU that is a host
    synchronisation, so training computes them on the host, with the batch
    (training/regimes.py), and models compute them only when none are given."""
    unique: torch.Tensor
    inverse: torch.Tensor

    def to(self, device: torch.device) -> RelationGroups:
        return RelationGroups(self.unique.to(device, non_blocking=True),
                              self.inverse.to(device, non_blocking=True))

    def rows(self, count: int) -> RelationGroups:
        """The groups of the first ``count`` queries (``unique`` may then hold more)."""
        return RelationGroups(self.unique, self.inverse[:count])


def relation_groups(relation_ids: torch.Tensor) -> RelationGroups:
    unique, inverse = torch.unique(relation_ids, return_inverse=True)
    return RelationGroups(unique, inverse)


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

    def query(self, head: torch.Tensor, unique_relation_vectors: torch.Tensor,
              inverse: torch.Tensor) -> torch.Tensor:
        """Query vector ``x = bn(W x1 bn(e_h) x2 w_r)`` ``[B, d]`` for heads ``[B, d]``; the
        embeddings ``[U, d_r]`` of the batch's distinct relations and each query's row in them
        (``RelationGroups``).

        TuckER drops out each query's ``W_r``; here the dropout mask is drawn once per distinct
        relation of the batch, the price of contracting the core once per relation."""
        x = self.input_dropout(self.input_norm(head))   # drawn before W_r's mask, as TuckER
        return self._contract(x, self.relation_matrices(unique_relation_vectors), inverse)

    def relation_matrices(self, unique_relation_vectors: torch.Tensor) -> torch.Tensor:
        """``W_r = W x2 w_r`` ``[U, d, d]`` per distinct relation (dropped out in training):
        the core contraction, the costly half, done once for any number of heads."""
        w_r = unique_relation_vectors @ self.core.view(self.core.shape[0], -1)
        return self.hidden_dropout1(w_r.view(-1, self.dim, self.dim))

    def apply_matrices(self, head: torch.Tensor, matrices: torch.Tensor, inverse: torch.Tensor
                       ) -> torch.Tensor:
        """The query vectors of heads ``[B, d]`` whose relations' ``W_r`` are
        ``matrices[inverse]`` (``relation_matrices``, contracted once for several heads)."""
        return self._contract(self.input_dropout(self.input_norm(head)), matrices, inverse)

    def _contract(self, x: torch.Tensor, matrices: torch.Tensor, inverse: torch.Tensor
                  ) -> torch.Tensor:
        x = torch.bmm(x.unsqueeze(1), matrices[inverse]).squeeze(1)
        return self.hidden_dropout2(self.hidden_norm(x))


def score_all(query: torch.Tensor, entities: torch.Tensor) -> torch.Tensor:
    """1-N scores ``[B, N]`` of query vectors ``[B, d]`` against entity vectors ``[N, d]``."""
    return query @ entities.T


def score_candidates(query: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Scores ``[B, C]`` of query vectors ``[B, d]`` against per-query candidates ``[B, C, d]``."""
    return torch.einsum("bd,bcd->bc", query, candidates)


def select_options(table: torch.Tensor, option: torch.Tensor) -> torch.Tensor:
    """``table [B, M, O, ...]`` at ``option [B, M]`` -> ``[B, M, ...]``."""
    index = option.view(*option.shape, 1, *([1] * (table.dim() - 3)))
    index = index.expand(*option.shape, 1, *table.shape[3:])
    return table.gather(2, index).squeeze(2)


def grouped_matmul(query: torch.Tensor, option: torch.Tensor, table: torch.Tensor
                   ) -> torch.Tensor:
    """``out[i] = query[i] @ table[:, option[i]].T``: ``query [B, d]``, ``table [N, O, d]``.
    Queries are sorted by option so each option costs one matmul (a loop over O, not over B)."""
    order = torch.argsort(option)
    counts = torch.bincount(option, minlength=table.shape[1]).tolist()
    pieces = [rows @ table[:, o].T
              for o, rows in enumerate(query[order].split(counts)) if counts[o]]
    return torch.cat(pieces)[torch.argsort(order)]
