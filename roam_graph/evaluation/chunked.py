"""Filtered ranks with candidates streamed in chunks: memory bounded by ``batch x chunk``.

The unchunked evaluator scores each query batch against all ``N`` entities at once (a
``[batch, N]`` block, plus the model's encoding of all entities). Here the candidate entities are
visited in chunks ``[start, start + chunk)``: the outer loop encodes one chunk (the model's
candidate side, once per chunk), the inner loop scores every query batch against it and adds, per
query, the number of non-filtered candidates scoring strictly higher than the target and the
number scoring equal (the target itself and the filtered answers excluded). Then

    optimistic = 1 + greater,  pessimistic = 1 + greater + equal,  realistic = their mean,

exactly the definitions of ``ranking`` (module docstring there).

How the target's score is known before the first chunk: the queries are sorted by target and
batched in that order, so a batch's targets fall in one or two chunks. A first pass scores, for
each chunk but the first, only the batches whose targets lie in it (``(1 - 1/c) / c`` of the work
for ``c`` chunks: none for one chunk, at most a quarter); the first chunk's targets are read off
during the counting pass itself. Both passes score the same batches against the same chunks, so
a target's score is bit-identical to what the counting pass computes for it (floating-point
results may depend on block shapes; here the shapes are the same). The target is excluded from
the counts and added back as the ``+ 1``.

The result equals the unchunked ranks exactly unless two candidates' scores differ only by the
rounding of differently shaped matrix products (a different batch or chunk width can change the
last bit); ``tests/test_large_graph.py`` checks equality on trained models of every kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from tqdm.auto import tqdm

from roam_graph.evaluation.ranking import NaNScoreError, RankTriple, check_no_nan
from roam_graph.graph.answers import AnswerIndex

#: ``(query index in the stream, batch row) -> NaNScoreError`` with a message naming the query.
NaNReport = Callable[[int, int], NaNScoreError]


@runtime_checkable
class CandidateScorer(Protocol):
    """Scores queries against any subset of entities, the candidate side encoded once per set.

    ``encode(ids [C]) -> encoding``; ``score(heads [B], relations [B], encoding) -> [B, C]``
    float scores (higher is better) of each query against each encoded entity, in ``ids`` order.
    Both are called under ``torch.inference_mode()`` with CPU int64 inputs."""

    def encode(self, ids: torch.Tensor) -> Any: ...

    def score(self, heads: torch.Tensor, relations: torch.Tensor, encoding: Any
              ) -> torch.Tensor: ...


@dataclass(frozen=True)
class ModelScorer:
    """``CandidateScorer`` of any model of ``roam_graph.model`` (ROAM, Tucker, MoMoK,
    Sinkhorn-MoE): ``model.encode_entities(ids)`` is the candidate side, and
    ``model(heads, relations, candidate_encoding=...)`` scores against it. Put the model in
    ``eval()`` mode first."""

    model: torch.nn.Module
    device: torch.device

    def encode(self, ids: torch.Tensor) -> Any:
        return self.model.encode_entities(ids.to(self.device))

    def score(self, heads: torch.Tensor, relations: torch.Tensor, encoding: Any
              ) -> torch.Tensor:
        return self.model(heads.to(self.device), relations.to(self.device),
                          candidate_encoding=encoding).scores.float()


def chunk_bounds(num_entities: int, chunk: int) -> list[tuple[int, int]]:
    """``ceil(N / chunk)`` ranges of near-equal width ``<= chunk`` covering ``[0, N)`` (no tiny
    last chunk: narrow matrix products are slow)."""
    count = -(-num_entities // chunk)
    edges = [num_entities * i // count for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def chunked_ranks(scorer: CandidateScorer, heads: torch.Tensor, relations: torch.Tensor,
                  targets: torch.Tensor, known: AnswerIndex, batch_size: int, chunk: int,
                  nan_report: NaNReport, progress: bool = False) -> RankTriple:
    """Filtered ranks of ``targets`` for queries ``(heads, relations)`` (module docstring);
    ``nan_report`` builds the error for a NaN score of query ``i`` (original order)."""
    order = torch.argsort(targets, stable=True)
    counter = _Counter(scorer, heads[order], relations[order], targets[order], known,
                       chunk_bounds(known.num_entities, chunk), batch_size,
                       lambda i, row: nan_report(int(order[i]), row))
    with torch.inference_mode():
        greater, equal = counter.run(progress)
    optimistic, pessimistic = (torch.empty(len(order), dtype=torch.float64) for _ in range(2))
    optimistic[order] = greater.to(torch.float64) + 1.0
    pessimistic[order] = (greater + equal).to(torch.float64) + 1.0
    return RankTriple(optimistic, pessimistic, (optimistic + pessimistic) / 2.0)


class _Counter:
    """The two streamed passes over queries sorted by target (module docstring)."""

    def __init__(self, scorer: CandidateScorer, heads: torch.Tensor, relations: torch.Tensor,
                 targets: torch.Tensor, known: AnswerIndex, chunks: list[tuple[int, int]],
                 batch_size: int, nan_report: NaNReport) -> None:
        self.scorer, self.heads, self.relations, self.targets = scorer, heads, relations, targets
        self.known, self.chunks, self.nan_report = known, chunks, nan_report
        total = len(heads)
        self.batches = [slice(s, min(s + batch_size, total)) for s in range(0, total, batch_size)]
        self.target_scores = torch.full((total,), float("nan"))
        self._filters: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def run(self, progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """``(greater, equal)`` per query, int64."""
        total = len(self.heads)
        greater = torch.zeros(total, dtype=torch.int64)
        equal = torch.zeros(total, dtype=torch.int64)
        # targets are sorted: the queries whose target lies in chunk c are one contiguous run
        starts = torch.tensor([start for start, _ in self.chunks] + [self.known.num_entities])
        runs = torch.searchsorted(self.targets, starts).tolist()
        for c, (start, stop) in enumerate(self.chunks[1:], start=1):   # pass 1: target scores
            if runs[c] == runs[c + 1]:
                continue
            encoding = self.scorer.encode(torch.arange(start, stop))
            for batch in self._batches_between(runs[c], runs[c + 1]):
                self._score(batch, start, stop, encoding, record_targets=True)
        bar = tqdm(total=len(self.chunks) * len(self.batches), desc="evaluate (chunks)",
                   unit="block", disable=not progress)
        for c, (start, stop) in enumerate(self.chunks):                 # pass 2: counts
            encoding = self.scorer.encode(torch.arange(start, stop))
            for batch in self.batches:
                scores = self._score(batch, start, stop, encoding, record_targets=c == 0)
                above, same = self._count(batch, start, stop, scores)
                greater[batch] += above
                equal[batch] += same
                bar.update(1)
        bar.close()
        return greater, equal

    def _batches_between(self, first: int, last: int) -> list[slice]:
        """The batches holding any of the queries ``first .. last - 1``."""
        size = self.batches[0].stop - self.batches[0].start
        return self.batches[first // size : (last - 1) // size + 1]

    def _score(self, batch: slice, start: int, stop: int, encoding: Any,
               record_targets: bool) -> torch.Tensor:
        """Scores ``[b, stop - start]``, checked; optionally records the targets' scores."""
        heads = self.heads[batch]
        scores = self.scorer.score(heads, self.relations[batch], encoding)
        width = stop - start
        if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (len(heads), width):
            shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores)
            raise ValueError(f"the scorer must return scores of shape [B, C] = "
                             f"{[len(heads), width]} (one row per query, one column per "
                             f"encoded candidate), got {shape}")
        try:
            check_no_nan(scores)
        except NaNScoreError as error:
            raise self.nan_report(batch.start + error.row, error.row) from None
        if record_targets:
            targets = self.targets[batch]
            inside = ((targets >= start) & (targets < stop)).nonzero().flatten()
            columns = (targets[inside] - start).to(scores.device)
            self.target_scores[batch.start + inside] = scores[inside.to(scores.device),
                                                              columns].cpu()
        return scores

    def _filter(self, batch: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Known answers of a batch as COO ``(row, entity)`` sorted by entity, so a chunk's
        share is one ``searchsorted`` away."""
        if batch.start not in self._filters:
            rows, cols = self.known.answers(self.heads[batch], self.relations[batch])
            order = torch.argsort(cols, stable=True)
            self._filters[batch.start] = (rows[order], cols[order])
        return self._filters[batch.start]

    def _count(self, batch: slice, start: int, stop: int, scores: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row: non-filtered candidates of the chunk above / equal to the target's score."""
        device, width = scores.device, stop - start
        targets = self.targets[batch]
        inside = ((targets >= start) & (targets < stop)).nonzero().flatten()
        rows, cols = self._filter(batch)
        low, high = torch.searchsorted(cols, torch.tensor([start, stop])).tolist()
        # the target is compared with, never counted among, the candidates: excluded like the
        # filtered answers, and added back as the "+ 1" of the ranks
        excluded = torch.cat([rows[low:high] * width + cols[low:high] - start,
                              inside * width + targets[inside] - start]).to(device)
        threshold = self.target_scores[batch].to(device=device, dtype=scores.dtype)[:, None]
        # float 0/1 masks summed (as ranking.py): exact while a row has < 2**24 candidates
        mask = torch.empty(scores.shape, device=device,
                           dtype=torch.float32 if width < 2**24 else torch.float64)
        torch.gt(scores, threshold, out=mask)
        mask.view(-1).index_fill_(0, excluded, 0)
        above = mask.sum(dim=1).to(torch.int64).cpu()
        torch.eq(scores, threshold, out=mask)
        mask.view(-1).index_fill_(0, excluded, 0)
        return above, mask.sum(dim=1).to(torch.int64).cpu()
