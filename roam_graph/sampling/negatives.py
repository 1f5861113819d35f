"""Negative sampling: ``k`` corrupted candidates per positive triple, as tail-prediction batches.

One sampler class composes three independent choices, plus filtering:

- which side to corrupt: ``head_probability`` per relation (uniform 1/2, Bernoulli, or tails only);
- where negatives come from: a ``CandidateDistribution`` (uniform, degree-weighted,
  type-constrained; see ``candidates.py``);
- layout: one negative set per positive, or one shared set per chunk of ``chunk_size`` rows;
- ``known``: an ``AnswerIndex`` of true triples that no negative may form (filtered sampling).

``make_negative_sampler("bernoulli+degree+filtered", kg, k)`` builds one from names.

Output convention (what the model consumes; docs/sampling.md): the model only scores tails of
queries ``(head, relation')`` over ``2R`` relations. A tail-corrupted positive ``(h, r, t)`` is
the query ``(h, r)`` with candidates ``[t, t'_1..t'_k]``; a head-corrupted one is the reciprocal
query ``(t, r + R)`` with candidates ``[h, h'_1..h'_k]``. Positives may themselves be reciprocal
(``r >= R``); the reverse of ``r'`` is ``(r' + R) mod 2R``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from roam_graph.data.errors import quote
from roam_graph.graph.answers import AnswerIndex, check_key_range
from roam_graph.graph.mmkg import MultimodalKG, reciprocal_triples
from roam_graph.sampling.candidates import (
    CandidateDistribution,
    DegreeWeighted,
    TypeConstrained,
    UniformEntities,
)


@dataclass(frozen=True)
class NegativeBatch:
    """Queries with a true tail and ``k`` negatives each.

    Attributes:
        queries: int64 ``[b, 2]`` ``(head, relation')``, ``relation' < 2R``.
        candidates: int64 ``[b, 1 + k]``: column 0 the true tail, columns 1..k negatives; with
            shared negatives only ``[b, 1]`` (the true tails).
        shared: int64 ``[num_chunks, k]`` shared negatives, or ``None``.
        chunk: int64 ``[b]`` chunk of each row (``row // chunk_size``), or ``None``. Row ``i``'s
            negatives are ``shared[chunk[i]]``; a model scores a chunk's queries against its
            negatives in one batched matmul (DGL-KE's joint negatives).
    """

    queries: torch.Tensor
    candidates: torch.Tensor
    shared: torch.Tensor | None = None
    chunk: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def k(self) -> int:
        """Negatives per query."""
        return self.shared.shape[1] if self.shared is not None else self.candidates.shape[1] - 1

    def expanded(self) -> torch.Tensor:
        """int64 ``[b, 1 + k]`` candidates per row, materialising shared negatives if needed."""
        if self.shared is None or self.chunk is None:
            return self.candidates
        return torch.cat([self.candidates, self.shared[self.chunk]], dim=1)


def bernoulli_head_probability(triples: torch.Tensor, num_entities: int, num_relations: int
                               ) -> torch.Tensor:
    """float64 ``[R]``: probability of corrupting the head, ``tph / (tph + hpt)`` (Wang et al.
    2014), with ``tph`` the mean number of tails per distinct head of ``r`` and ``hpt`` the mean
    number of heads per distinct tail, over distinct training triples. A relation without
    training triples gets 1/2. Corrupting the "many" side of a 1-N relation rarely makes a true
    triple by accident."""
    check_key_range(num_entities, num_relations, "Bernoulli negative sampling")
    h, r, t = triples.to(torch.int64).unbind(1)
    distinct = torch.unique((r * num_entities + h) * num_entities + t)
    rel = distinct // (num_entities * num_entities)
    count = torch.bincount(rel, minlength=num_relations).to(torch.float64)
    heads = torch.bincount(torch.unique(distinct // num_entities) // num_entities,
                           minlength=num_relations).to(torch.float64)
    tails = torch.bincount(torch.unique(rel * num_entities + distinct % num_entities)
                           // num_entities, minlength=num_relations).to(torch.float64)
    tph = count / heads.clamp(min=1)
    hpt = count / tails.clamp(min=1)
    return torch.where(count > 0, tph / (tph + hpt).clamp(min=1e-300), 0.5)


class NegativeSampler:
    """``sampler(positives [b, 3], generator) -> NegativeBatch`` (see the module docstring).

    Args:
        k: negatives per positive (> 0).
        num_relations: ``R`` (without reciprocals).
        distribution: where negatives are drawn from.
        head_probability: float ``[R]`` chance to corrupt the head of ``(h, r, t)``; ``None``
            corrupts tails only (use it when positives already include reciprocal queries).
        chunk_size: share one negative set among each ``chunk_size`` consecutive rows.
        known: true triples (relations ``< 2R``) that no negative may form.
        max_rounds: bound on re-sampling rounds for ``known`` collisions.
        seed: seeds the sampler's own generator, used when no generator is passed.
    """

    def __init__(self, k: int, num_relations: int, distribution: CandidateDistribution, *,
                 head_probability: torch.Tensor | None = None, chunk_size: int | None = None,
                 known: AnswerIndex | None = None, max_rounds: int = 100, seed: int = 0) -> None:
        if not isinstance(k, int) or k <= 0:
            raise ValueError(f"k (negatives per positive) must be a positive integer, got {k!r}")
        if chunk_size is not None and chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
        if chunk_size is not None and not distribution.shareable:
            raise ValueError(f"{type(distribution).__name__} negatives depend on the query "
                             f"relation and cannot be shared across a chunk")
        if max_rounds < 0:
            raise ValueError(f"max_rounds must be >= 0, got {max_rounds}")
        self.k, self.num_relations = k, num_relations
        self.distribution, self.chunk_size = distribution, chunk_size
        self.known, self.max_rounds = known, max_rounds
        # Over 2R relations: corrupting the head of a reciprocal (t, r + R, h) corrupts the tail
        # of the original, so its probability is 1 - p[r].
        self.head_probability = (None if head_probability is None else torch.cat(
            [head_probability, 1.0 - head_probability]).to(torch.float64))
        self._generator = torch.Generator().manual_seed(seed)

    def __call__(self, positives: torch.Tensor, generator: torch.Generator | None = None
                 ) -> NegativeBatch:
        generator = self._generator if generator is None else generator
        heads, relations, tails = positives.to(torch.int64).unbind(1)
        if self.head_probability is not None:
            flip = torch.rand(len(positives), generator=generator,
                              dtype=torch.float64) < self.head_probability[relations]
            reverse = torch.remainder(relations + self.num_relations, 2 * self.num_relations)
            heads, relations, tails = (torch.where(flip, tails, heads),
                                       torch.where(flip, reverse, relations),
                                       torch.where(flip, heads, tails))
        queries = torch.stack([heads, relations], dim=1)
        chunk = self.chunk_size or 1
        num_sets = -(-len(positives) // chunk)
        negatives = self.distribution.draw(num_sets, self.k, generator,
                                           relations if self.chunk_size is None else None)
        if self.known is not None:
            self._filter(queries, negatives, chunk, generator)
        if self.chunk_size is None:
            return NegativeBatch(queries, torch.cat([tails.unsqueeze(1), negatives], dim=1))
        row_chunk = torch.arange(len(positives)) // self.chunk_size
        return NegativeBatch(queries, tails.unsqueeze(1), negatives, row_chunk)

    def _filter(self, queries: torch.Tensor, negatives: torch.Tensor, chunk: int,
                generator: torch.Generator) -> None:
        """Re-draw, in place, every negative that forms a known triple with any query it serves,
        until none does. Per-row negatives are the case ``chunk == 1``. Each round checks only
        the re-drawn slots, so rounds after the first are tiny."""
        known = self.known
        assert known is not None
        flat = negatives.view(-1)
        slots = torch.arange(len(flat))
        offsets = torch.arange(chunk)
        for round_ in range(self.max_rounds + 1):
            if chunk == 1:  # per-row negatives: slot s serves row s // k only
                pair_rows, pair_slots = slots // self.k, slots
            else:  # slot s of set c = s // k serves rows [c * chunk, (c + 1) * chunk)
                rows = ((slots // self.k) * chunk).unsqueeze(1) + offsets
                valid = rows < len(queries)
                pair_rows, pair_slots = rows[valid], slots.unsqueeze(1).expand_as(rows)[valid]
            heads, relations, entities = (queries[pair_rows, 0], queries[pair_rows, 1],
                                          flat[pair_slots])
            hit = known.contains(torch.stack([heads, relations, entities], dim=1))
            slots = torch.unique(pair_slots[hit])
            if len(slots) == 0:
                return
            if round_ == self.max_rounds:
                first = int(hit.nonzero()[0])
                head, relation, entity = (int(heads[first]), int(relations[first]),
                                          int(entities[first]))
                raise RuntimeError(
                    f"filtered negative sampling: {len(slots)} negatives still form known "
                    f"triples after {self.max_rounds} re-sampling rounds (e.g. query (head "
                    f"{head}, relation {relation}) with candidate {entity}); the candidate "
                    f"distribution has (almost) no entity that is not a known answer of these "
                    f"queries. Use a wider distribution (drop 'type-constrained') or raise "
                    f"max_rounds.")
            slot_relations = queries[slots // self.k, 1] if chunk == 1 else None
            flat[slots] = self.distribution.draw(len(slots), 1, generator,
                                                 slot_relations).view(-1)


#: Strategy names, by group; at most one name of each group may be combined with ``+``.
SIDES = ("uniform", "bernoulli", "tail")
DISTRIBUTIONS = ("degree", "type-constrained")
MODIFIERS = ("shared", "filtered")
STRATEGIES = SIDES + DISTRIBUTIONS + MODIFIERS


def strategy_names(spec: str) -> list[str]:
    """The names of a ``+``-joined strategy, checked (ValueError naming the problem)."""
    names = [name.strip() for name in spec.split("+")]
    unknown = [name for name in names if name not in STRATEGIES]
    if unknown or not spec.strip():
        raise ValueError(f"unknown negative-sampling strategy "
                         f"{quote(unknown[0] if unknown else spec)}; valid names (join with "
                         f"'+'): {', '.join(STRATEGIES)}")
    for group in (SIDES[1:], DISTRIBUTIONS):
        if sum(name in group for name in names) > 1:
            raise ValueError(f"{quote(spec)} combines "
                             f"{' and '.join(n for n in names if n in group)}; choose one of them")
    return names


def make_negative_sampler(spec: str, kg: MultimodalKG, k: int, *,
                          triples: torch.Tensor | None = None, alpha: float = 0.75,
                          chunk_size: int = 64, filter_splits: Sequence[str] = ("train",),
                          max_rounds: int = 100, seed: int = 0) -> NegativeSampler:
    """A sampler from ``+``-joined names, e.g. ``"bernoulli+degree+filtered"``.

    ``uniform`` (the default: head or tail with probability 1/2, uniform entities), ``bernoulli``
    (side per relation), ``tail`` (tails only); ``degree`` (``deg^alpha``), ``type-constrained``;
    ``shared`` (one set per ``chunk_size`` rows), ``filtered`` (no negative forms a triple of
    ``filter_splits``). Statistics (Bernoulli, degrees, types) come from ``triples`` (default: the
    graph's train split, pass a sampled subgraph to match what is trained on); filtering always
    uses the full splits of ``kg``.
    """
    names = strategy_names(spec)
    train = kg.triples("train") if triples is None else triples.to(torch.int64)
    num_entities, num_relations = kg.num_entities, kg.num_relations
    distribution: CandidateDistribution
    if "degree" in names:
        distribution = DegreeWeighted.from_triples(train, num_entities, alpha)
    elif "type-constrained" in names:
        distribution = TypeConstrained.from_triples(train, num_entities, num_relations)
    else:
        distribution = UniformEntities(num_entities)
    head_probability: torch.Tensor | None = torch.full((num_relations,), 0.5, dtype=torch.float64)
    if "bernoulli" in names:
        head_probability = bernoulli_head_probability(train, num_entities, num_relations)
    elif "tail" in names:
        head_probability = None
    known = None
    if "filtered" in names:
        known = AnswerIndex.build(reciprocal_triples(kg.triples(list(filter_splits)),
                                                     num_relations), num_entities,
                                  2 * num_relations)
    return NegativeSampler(k, num_relations, distribution, head_probability=head_probability,
                           chunk_size=chunk_size if "shared" in names else None, known=known,
                           max_rounds=max_rounds, seed=seed)
