"""Filtered link-prediction evaluation in both directions, batch by batch.

Every test triple ``(h, r, t)`` gives two queries, answered by the same score function over
``2R`` relations: the tail query ``(h, r) -> t`` and the head query ``(t, r + R) -> h`` (head
prediction as tail prediction of the reciprocal relation). Each query is ranked against all
entities, filtered by the known true answers of train + valid + test (Bordes et al. 2013), with
the optimistic, pessimistic and realistic tie handling of ``ranking``; the realistic rank is the
headline (as in PyKEEN and LibKGE). Memory stays bounded: one ``[batch_size, N]`` score block is
alive at a time and the filter is read from the ``AnswerIndex`` CSR per batch. With a
``CandidateScorer`` and ``candidate_chunk``, candidates are streamed in chunks instead
(``chunked``): one ``[batch_size, candidate_chunk]`` block at a time, for graphs where even one
``[batch_size, N]`` block, or the encoding of all entities, is too large; the ranks are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from roam_graph.evaluation.chunked import CandidateScorer, chunked_ranks
from roam_graph.evaluation.metrics import category_metrics, rank_metrics, relation_metrics
from roam_graph.evaluation.ranking import TIE_MODES, NaNScoreError, RankTriple, filtered_ranks
from roam_graph.graph.answers import AnswerIndex

if TYPE_CHECKING:
    from roam_graph.graph.mmkg import MultimodalKG

DIRECTIONS = ("tail", "head")
HEADLINE = "realistic"
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class EvaluationResult:
    """Ranks and metrics of one evaluation (see the module docstring).

    ``ranks[tie_mode][direction]`` is float64 ``[n]`` aligned with the evaluated triples (row
    ``i`` of ``tail`` and of ``head`` both belong to triple ``i``), kept for significance tests.
    ``metrics[tie_mode]`` holds ``both`` (the 2n queries), ``tail`` and ``head``.
    ``per_relation`` (relation id) and ``per_category`` (category name) use the realistic ranks,
    both directions merged; ``per_category_direction[direction][name]`` splits the categories by
    direction, as in Bordes et al. (2013), Table 4; queries of relations without a category
    (``UNSEEN``) are left out of both. Their dicts also hold ``count``, the number of queries."""

    ranks: dict[str, dict[str, torch.Tensor]]
    relations: torch.Tensor
    metrics: dict[str, dict[str, dict[str, float]]]
    per_relation: dict[int, dict[str, float]]
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)
    per_category_direction: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    tie_handling: str = HEADLINE

    @property
    def headline(self) -> dict[str, float]:
        """Metrics of the realistic ranks, both directions."""
        return self.metrics[self.tie_handling]["both"]

    def to_json(self, relation_names: Sequence[str] | None = None) -> dict:
        """Plain JSON-able dict: the headline metrics (``mrr``, ``mr``, ``hits@k``, realistic,
        both directions) at top level with ``tail`` and ``head`` blocks, an ``optimistic`` and a
        ``pessimistic`` block of the same shape, ``per_relation`` keyed by relation name when
        ``relation_names`` (indexed by relation id) is given and by the id as a string otherwise,
        ``per_category``, ``per_category_direction``, ``tie_handling`` and ``num_triples``."""
        def block(mode: str) -> dict:
            by_direction = self.metrics[mode]
            return {**by_direction["both"], **{d: dict(by_direction[d]) for d in DIRECTIONS}}

        def relation_key(relation: int) -> str:
            return relation_names[relation] if relation_names is not None else str(relation)

        return {
            **block(self.tie_handling),
            **{mode: block(mode) for mode in TIE_MODES if mode != self.tie_handling},
            "per_relation": {relation_key(r): dict(m) for r, m in self.per_relation.items()},
            "per_category": {c: dict(m) for c, m in self.per_category.items()},
            "per_category_direction": {d: {c: dict(m) for c, m in by_category.items()}
                                       for d, by_category in self.per_category_direction.items()},
            "tie_handling": self.tie_handling,
            "num_triples": len(self.relations),
        }


def build_filter(kg: MultimodalKG) -> AnswerIndex:
    """The filter of known answers: train + valid + test with reciprocals, over ``2R`` relations."""
    triples = kg.triples(["train", "valid", "test"], reciprocal=True)
    return AnswerIndex.build(triples, kg.num_entities, 2 * kg.num_relations)


def evaluate(score_fn: ScoreFn | CandidateScorer, triples: torch.Tensor, known: AnswerIndex,
             num_relations: int, batch_size: int = 512, categories: torch.Tensor | None = None,
             progress: bool = False, candidate_chunk: int | None = None) -> EvaluationResult:
    """Filtered ranks and metrics of ``triples`` in both directions.

    Args:
        score_fn: ``(heads [B], relations [B]) -> scores [B, N]`` over all ``N`` entities, higher
            is better; relations lie in ``[0, 2R)`` (``r + R`` is the reciprocal of ``r``). It
            receives CPU int64 tensors (move them to the model's device inside) and is called
            under ``torch.inference_mode()``. Scores may live on any device; ranking runs there.
            Or a ``CandidateScorer`` (e.g. ``ModelScorer(model, device)``), which scores
            against any set of entities: candidates are then streamed in chunks.
        triples: int ``[n, 3]`` ``(head, relation, tail)`` with relations in ``[0, R)``.
        known: the filter, built over all splits with reciprocals (``build_filter``), so
            ``known.num_relations == 2 * num_relations``; it fixes ``N = known.num_entities``.
        num_relations: ``R``, the relation count without reciprocals.
        batch_size: queries per score block; memory grows as ``batch_size * N``.
        categories: optional int ``[R]`` category id per relation (``relation_categories``) for
            the per-category metrics.
        progress: show a tqdm progress bar.
        candidate_chunk: with a ``CandidateScorer``, entities per candidate chunk (None: all
            ``N`` in one chunk); memory then grows as ``batch_size * candidate_chunk``.
    """
    triples = _check_inputs(triples, known, num_relations, batch_size, categories)
    heads, relations, tails = triples.unbind(1)
    # tail queries then head queries: one stream of 2n queries, chunked without regard to direction
    query_heads = torch.cat([heads, tails])
    query_relations = torch.cat([relations, relations + num_relations])
    query_targets = torch.cat([tails, heads])
    if isinstance(score_fn, CandidateScorer):
        ranks = _chunked_ranks(score_fn, query_heads, query_relations, query_targets, known,
                               batch_size, candidate_chunk, progress)
    elif candidate_chunk is not None:
        raise ValueError("candidate_chunk needs a CandidateScorer (e.g. ModelScorer), not a "
                         "function scoring all entities at once")
    else:
        ranks = _all_entity_ranks(score_fn, query_heads, query_relations, query_targets, known,
                                  batch_size, progress)
    return _result(ranks, relations, num_relations, categories)


def _chunked_ranks(scorer: CandidateScorer, heads: torch.Tensor, relations: torch.Tensor,
                   targets: torch.Tensor, known: AnswerIndex, batch_size: int,
                   candidate_chunk: int | None, progress: bool) -> RankTriple:
    """Ranks of the queries (tail queries, then head queries) with candidates in chunks."""
    chunk = known.num_entities if candidate_chunk is None else candidate_chunk
    if chunk < 1:
        raise ValueError(f"candidate_chunk must be >= 1, got {candidate_chunk}")
    num_triples = len(heads) // 2

    def report(query: int, row: int) -> NaNScoreError:
        return _nan_error(query, row, int(heads[query]), int(relations[query]), num_triples,
                          query - row)

    return chunked_ranks(scorer, heads, relations, targets, known, batch_size, chunk, report,
                         progress)


def _all_entity_ranks(score_fn: ScoreFn, heads: torch.Tensor, relations: torch.Tensor,
                      targets: torch.Tensor, known: AnswerIndex, batch_size: int,
                      progress: bool) -> RankTriple:
    """Ranks of the queries (tail queries, then head queries), all entities scored at once."""
    batches: list[RankTriple] = []
    for start in tqdm(range(0, len(heads), batch_size), desc="evaluate", unit="batch",
                      disable=not progress):
        batch = slice(start, start + batch_size)
        batches.append(_rank_batch(score_fn, known, heads[batch], relations[batch],
                                   targets[batch], start, len(heads) // 2))
    return RankTriple(*(torch.cat(mode) for mode in zip(*batches, strict=True)))


def _rank_batch(score_fn: ScoreFn, known: AnswerIndex, heads: torch.Tensor,
                relations: torch.Tensor, targets: torch.Tensor, start: int, num_triples: int
                ) -> RankTriple:
    """CPU ranks of one batch of queries (``start`` = index of its first query in the stream)."""
    with torch.inference_mode():
        scores = score_fn(heads, relations)
        expected = (len(heads), known.num_entities)
        if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != expected:
            shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores)
            raise ValueError(f"score_fn must return scores of shape [B, N] = {list(expected)} "
                             f"(one row per query, one column per entity), got {shape}")
        rows, cols = known.answers(heads, relations)
        try:
            ranks = filtered_ranks(scores, targets, rows, cols)
        except NaNScoreError as error:
            raise _nan_error(start + error.row, error.row, int(heads[error.row]),
                             int(relations[error.row]), num_triples, start) from None
    return RankTriple(*(r.cpu() for r in ranks))


def _nan_error(query: int, row: int, head: int, relation: int, num_triples: int, start: int
               ) -> NaNScoreError:
    """The error naming the triple and direction of query ``query`` of the stream (row ``row``
    of the batch starting at query ``start``)."""
    direction = DIRECTIONS[query // num_triples]
    return NaNScoreError(row, (
        f"NaN in the scores of triple {query % num_triples}, {direction} query "
        f"(entity {head}, relation {relation}; row {row} of the batch starting at query "
        f"{start})"))


def _result(ranks: RankTriple, relations: torch.Tensor, num_relations: int,
            categories: torch.Tensor | None) -> EvaluationResult:
    n = len(relations)
    by_mode = dict(zip(TIE_MODES, ranks, strict=True))
    per_mode = {mode: {"tail": r[:n], "head": r[n:]} for mode, r in by_mode.items()}
    metrics = {mode: {"both": rank_metrics(r), "tail": rank_metrics(r[:n]),
                      "head": rank_metrics(r[n:])} for mode, r in by_mode.items()}
    both_relations = torch.cat([relations, relations])
    headline = by_mode[HEADLINE]
    result = EvaluationResult(per_mode, relations.clone(), metrics,
                              relation_metrics(headline, both_relations, num_relations))
    if categories is not None:
        result.per_category = category_metrics(headline, both_relations, categories)
        result.per_category_direction = {
            d: category_metrics(per_mode[HEADLINE][d], relations, categories) for d in DIRECTIONS}
    return result


def _check_inputs(triples: torch.Tensor, known: AnswerIndex, num_relations: int,
                  batch_size: int, categories: torch.Tensor | None) -> torch.Tensor:
    if triples.dim() != 2 or triples.shape[1] != 3:
        raise ValueError(f"triples must be [n, 3] (head, relation, tail), got shape "
                         f"{tuple(triples.shape)}")
    if len(triples) == 0:
        raise ValueError("no triples to evaluate")
    if known.num_relations != 2 * num_relations:
        raise ValueError(f"the filter must be built with reciprocal relations: expected "
                         f"num_relations = 2 * {num_relations}, got {known.num_relations}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    triples = triples.to("cpu", torch.int64)
    relations = triples[:, 1]
    if int(relations.min()) < 0 or int(relations.max()) >= num_relations:
        raise ValueError(f"triple relations must lie in [0, {num_relations}) (no reciprocals), "
                         f"got values in [{int(relations.min())}, {int(relations.max())}]")
    entities = triples[:, [0, 2]]
    if int(entities.min()) < 0 or int(entities.max()) >= known.num_entities:
        raise ValueError(f"triple entities must lie in [0, {known.num_entities})")
    if categories is not None and categories.shape != (num_relations,):
        raise ValueError(f"categories must be [R] = [{num_relations}], got shape "
                         f"{tuple(categories.shape)}")
    return triples
