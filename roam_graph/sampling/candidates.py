"""Where negative entities are drawn from: uniform, degree-weighted, or type-constrained.

A distribution answers ``draw(count, k, generator, relations)`` with int64 ``[count, k]`` entity
ids. Negatives always replace the *tail* of a query ``(head, relation')`` with ``relation' < 2R``
(a corrupted head is the tail of the reciprocal query), so ``relations`` are query relations and a
type constraint is "entities seen as tails of ``relation'`` in train": for ``r' < R`` the tails of
``r``, for ``r' >= R`` the heads of ``r' - R``.

``shareable`` says whether one draw may serve a whole chunk of queries (shared negatives): only
when the distribution does not depend on the query relation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from roam_graph.graph.answers import AnswerIndex
from roam_graph.graph.mmkg import reciprocal_triples


class CandidateDistribution(Protocol):
    shareable: bool

    def draw(self, count: int, k: int, generator: torch.Generator,
             relations: torch.Tensor | None = None) -> torch.Tensor:
        """int64 ``[count, k]`` entities; ``relations`` (int64 ``[count]``) are the queries'
        relations, needed only by relation-dependent distributions."""
        ...


@dataclass(frozen=True)
class UniformEntities:
    """Every entity with probability ``1 / N`` (Bordes et al. 2013)."""

    num_entities: int
    shareable: bool = True

    def draw(self, count: int, k: int, generator: torch.Generator,
             relations: torch.Tensor | None = None) -> torch.Tensor:
        return torch.randint(0, self.num_entities, (count, k), generator=generator)


def entity_degrees(triples: torch.Tensor, num_entities: int) -> torch.Tensor:
    """int64 ``[N]`` number of triples each entity takes part in (as head or tail)."""
    return (torch.bincount(triples[:, 0], minlength=num_entities)
            + torch.bincount(triples[:, 2], minlength=num_entities))


@dataclass(frozen=True)
class DegreeWeighted:
    """Entity ``e`` with probability ``deg(e)^alpha / sum deg^alpha`` (word2vec's 0.75 smoothing).

    Sampling is exact and avoids a binary search per sample (``torch.searchsorted`` and
    ``torch.multinomial`` cost ~40 ms per 262k draws on 2 cores): a table of ``slots`` cells gives
    entity ``e`` ``floor(p_e * slots)`` cells; a uniform cell index picks the entity, and the
    cells past the table (total mass ``< N / slots``, ~2%) fall back to a binary search over the
    remainders ``p_e * slots - floor(p_e * slots)``. Together: ``P(e) = p_e`` exactly.
    Entities of degree 0 are never drawn when ``alpha > 0``.
    """

    probabilities: torch.Tensor  # float64 [N]
    table: torch.Tensor          # int64 [filled] entity per cell
    remainder_cdf: torch.Tensor  # float64 [N] cumulative remainders, normalised to end at 1
    slots: int
    alpha: float
    shareable: bool = True

    @classmethod
    def from_triples(cls, triples: torch.Tensor, num_entities: int, alpha: float = 0.75,
                     resolution: int = 64) -> DegreeWeighted:
        """Degrees counted on ``triples`` (train); ``slots = resolution * N``."""
        if alpha < 0:
            raise ValueError(f"degree exponent alpha must be >= 0, got {alpha}")
        weights = entity_degrees(triples, num_entities).to(torch.float64) ** alpha
        if weights.sum() <= 0:
            raise ValueError("degree-weighted negatives: no entity has a positive degree")
        probabilities = weights / weights.sum()
        slots = resolution * num_entities
        scaled = probabilities * slots
        cells = scaled.floor().to(torch.int64)
        table = torch.repeat_interleave(torch.arange(num_entities), cells)
        remainder = torch.cumsum(scaled - cells, 0)
        remainder_cdf = remainder / remainder[-1] if remainder[-1] > 0 else remainder
        return cls(probabilities, table, remainder_cdf, slots, float(alpha))

    def draw(self, count: int, k: int, generator: torch.Generator,
             relations: torch.Tensor | None = None) -> torch.Tensor:
        cell = torch.randint(0, self.slots, (count * k,), generator=generator)
        spill = cell >= len(self.table)
        entities = self.table[cell.clamp(max=len(self.table) - 1)]
        num_spill = int(spill.sum())
        if num_spill:
            uniform = torch.rand(num_spill, generator=generator, dtype=torch.float64)
            picked = torch.searchsorted(self.remainder_cdf, uniform, right=True)
            entities[spill] = picked.clamp(max=len(self.remainder_cdf) - 1)
        return entities.view(count, k)


@dataclass(frozen=True)
class TypeConstrained:
    """For query relation ``r'``, uniform over the entities seen as tails of ``r'`` in train
    (Krompass et al. 2015's local closed-world type constraint). A relation without training
    edges has no observed range; its candidates fall back to all entities.

    The per-relation entity sets are an ``AnswerIndex`` over pseudo-triples ``(0, r', e)``:
    query ``(0, r')`` answers the sorted range of ``r'``, so no second index type is needed.
    """

    ranges: AnswerIndex
    num_entities: int
    shareable: bool = False

    @classmethod
    def from_triples(cls, triples: torch.Tensor, num_entities: int, num_relations: int
                     ) -> TypeConstrained:
        """From training triples ``(h, r, t)``, ``r < num_relations``."""
        both = reciprocal_triples(triples.to(torch.int64), num_relations)
        pseudo = torch.stack([torch.zeros_like(both[:, 1]), both[:, 1], both[:, 2]], dim=1)
        return cls(AnswerIndex.build(pseudo, num_entities, 2 * num_relations), num_entities)

    def allowed(self, relation: int) -> torch.Tensor:
        """The sorted entities that may be drawn for query relation ``relation``."""
        zero = torch.zeros(1, dtype=torch.int64)
        _, entities = self.ranges.answers(zero, torch.tensor([relation]))
        return entities if len(entities) else torch.arange(self.num_entities)

    def draw(self, count: int, k: int, generator: torch.Generator,
             relations: torch.Tensor | None = None) -> torch.Tensor:
        if relations is None:
            raise ValueError("type-constrained negatives need the query relations")
        rows = self.ranges.query_rows(torch.zeros_like(relations), relations)
        known = rows >= 0
        safe = rows.clamp(min=0)
        start = self.ranges.offsets[safe]
        size = torch.where(known, self.ranges.offsets[safe + 1] - start, self.num_entities)
        # one uniform number per draw, scaled to the row's range size (float64: exact enough
        # for ranges far beyond 2^32 entities)
        uniform = torch.rand((count, k), generator=generator, dtype=torch.float64)
        pick = (uniform * size.unsqueeze(1)).to(torch.int64).minimum(size.unsqueeze(1) - 1)
        in_range = self.ranges.tails[(start.unsqueeze(1) + pick).clamp(
            max=max(len(self.ranges.tails) - 1, 0))]
        return torch.where(known.unsqueeze(1), in_range, pick)
