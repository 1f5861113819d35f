"""1-N batches: unique ``(head, relation')`` queries of train with their known tails as targets.

Queries are the rows of an ``AnswerIndex`` built from the training triples with reciprocals
(``relation' < 2R``; head prediction is tail prediction of ``r + R``). A batch keeps its targets
sparse, as COO ``(target_rows, target_tails)`` from ``AnswerIndex.answers``; the ``[b, N]`` dense
matrix is made only when the model asks (``dense_targets``), since at ``N`` = 15k entities it is
~60 MB per 1024 queries.

Label smoothing (``dense_targets``): ``y_smooth = (1 - eps) * y + eps / N`` (the standard
definition of Szegedy et al. 2016). Note that the ConvE/TuckER code adds ``1 / N`` instead of
``eps / N``; docs/sampling.md explains the choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from roam_graph.graph.answers import AnswerIndex
from roam_graph.graph.mmkg import MultimodalKG, reciprocal_triples
from roam_graph.sampling.epochs import ShuffledBatches


@dataclass(frozen=True)
class OneToNBatch:
    """``b`` queries and their known answers.

    Attributes:
        queries: int64 ``[b, 2]`` ``(head, relation')``, ``relation' < 2R``.
        target_rows: int64 ``[nnz]`` row of each known answer in the batch.
        target_tails: int64 ``[nnz]`` the answer entity.
        num_entities: ``N``, the width of the dense targets.
    """

    queries: torch.Tensor
    target_rows: torch.Tensor
    target_tails: torch.Tensor
    num_entities: int

    def __len__(self) -> int:
        return len(self.queries)


def dense_targets(batch: OneToNBatch, label_smoothing: float = 0.0,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """float32 ``[b, N]`` multi-hot targets, smoothed as ``(1 - eps) * y + eps / N``, built on
    ``device`` (default CPU) from the batch's sparse answers: only the ``nnz`` answer indices
    cross to a GPU, not the dense ``[b, N]`` matrix.

    The two values are computed in float64 and rounded once to float32, so they are exactly
    ``float32((1 - eps) + eps / N)`` and ``float32(eps / N)``."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    size = (len(batch.queries), batch.num_entities)
    rows = batch.target_rows.to(device, non_blocking=True)
    tails = batch.target_tails.to(device, non_blocking=True)
    off = label_smoothing / batch.num_entities
    on = (1.0 - label_smoothing) + off
    targets = torch.full(size, float(torch.tensor(off, dtype=torch.float64).float()),
                         device=device)
    targets[rows, tails] = float(torch.tensor(on, dtype=torch.float64).float())
    return targets


class OneToNSampler(ShuffledBatches[OneToNBatch]):
    """Shuffled, resumable batches of unique training queries (see ``epochs.ShuffledBatches``).
    ``shard(rank, world_size)`` gives a data-parallel rank its disjoint share of each epoch's
    queries (docs/distributed.md).

    Args:
        answers: the training ``AnswerIndex`` (relations including reciprocals); its rows are the
            queries, each visited once per epoch.
        batch_size: queries per batch.
    """

    def __init__(self, answers: AnswerIndex, batch_size: int, *, seed: int = 0,
                 drop_last: bool = False, num_workers: int = 0) -> None:
        self.answers = answers
        super().__init__(answers.num_queries, batch_size, seed=seed, drop_last=drop_last,
                         num_workers=num_workers)

    @classmethod
    def from_triples(cls, triples: torch.Tensor, num_entities: int, num_relations: int,
                     batch_size: int, *, seed: int = 0, drop_last: bool = False,
                     num_workers: int = 0) -> OneToNSampler:
        """From training triples ``(h, r, t)`` with ``r < num_relations``; reciprocals are added
        here, so the queries cover both tail and head prediction."""
        index = AnswerIndex.build(reciprocal_triples(triples.to(torch.int64), num_relations),
                                  num_entities, 2 * num_relations)
        return cls(index, batch_size, seed=seed, drop_last=drop_last, num_workers=num_workers)

    @classmethod
    def from_kg(cls, kg: MultimodalKG, batch_size: int, *, triples: torch.Tensor | None = None,
                seed: int = 0, drop_last: bool = False, num_workers: int = 0) -> OneToNSampler:
        """Over ``kg``'s training triples, or over ``triples`` (e.g. a sampled subgraph)."""
        return cls.from_triples(kg.triples("train") if triples is None else triples,
                                kg.num_entities, kg.num_relations, batch_size, seed=seed,
                                drop_last=drop_last, num_workers=num_workers)

    def make_batch(self, indices: torch.Tensor, generator: torch.Generator | None
                   ) -> OneToNBatch:
        heads, relations = self.answers.query_at(indices)
        rows, tails = self.answers.answers(heads, relations)
        return OneToNBatch(torch.stack([heads, relations], dim=1), rows, tails,
                           self.answers.num_entities)
