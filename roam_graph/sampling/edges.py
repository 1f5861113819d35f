"""``EdgeBatchSampler``: the training edges of all relations in shuffled ``(h, r, t)`` batches.

One epoch visits every training edge exactly once (with ``reciprocal=True``: every edge and every
reciprocal query ``(t, r + R, h)`` exactly once, shuffled together, so an epoch has ``2n`` rows).
Order, resumption and workers follow ``epochs.ShuffledBatches``. An optional ``transform`` (for
example a ``NegativeSampler``) turns each positive batch into what the model consumes; it gets the
batch's own generator, so negatives too are reproducible, resumable and worker-independent.

The edges come from the graph's flat training view (``kg.triples("train")``, which DGL's
homogeneous view produced); batching is a gather on a permutation, no DGL call is needed per batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from roam_graph.graph.mmkg import MultimodalKG, reciprocal_triples
from roam_graph.sampling.epochs import ShuffledBatches

#: ``transform(positives [b, 3], generator) -> batch``; negative samplers have this signature.
BatchTransform = Callable[[torch.Tensor, torch.Generator], Any]


class EdgeBatchSampler(ShuffledBatches[Any]):
    """Shuffled batches of training triples, int64 ``[b, 3]`` ``(head, relation, tail)``.

    Args:
        triples: int64 ``[n, 3]`` training triples (relations ``< num_relations``).
        batch_size: rows per batch (the last batch is smaller unless ``drop_last``).
        num_relations: ``R``; required with ``reciprocal=True``.
        reciprocal: also visit ``(t, r + R, h)`` for every edge.
        seed: fixes every epoch's order and every batch's transform stream.
        num_workers: build batches in this many ``DataLoader`` worker processes (same batches).
        transform: applied to each batch with the batch's generator (see module docstring).
    """

    def __init__(self, triples: torch.Tensor, batch_size: int, *,
                 num_relations: int | None = None, reciprocal: bool = False, seed: int = 0,
                 drop_last: bool = False, num_workers: int = 0,
                 transform: BatchTransform | None = None) -> None:
        if triples.ndim != 2 or triples.shape[1] != 3:
            raise ValueError(f"triples must be [n, 3], got {tuple(triples.shape)}")
        if reciprocal and num_relations is None:
            raise ValueError("reciprocal=True needs num_relations (R) to form r + R")
        triples = triples.to(torch.int64)
        self.items = (reciprocal_triples(triples, num_relations) if reciprocal
                      else triples).contiguous()
        self.reciprocal = reciprocal
        self.transform = transform
        self.needs_generator = transform is not None
        super().__init__(len(self.items), batch_size, seed=seed, drop_last=drop_last,
                         num_workers=num_workers)

    @classmethod
    def from_kg(cls, kg: MultimodalKG, batch_size: int, *, triples: torch.Tensor | None = None,
                reciprocal: bool = False, seed: int = 0, drop_last: bool = False,
                num_workers: int = 0, transform: BatchTransform | None = None
                ) -> EdgeBatchSampler:
        """Over ``kg``'s training edges, or over ``triples`` (e.g. a sampled subgraph of them)."""
        return cls(kg.triples("train") if triples is None else triples, batch_size,
                   num_relations=kg.num_relations, reciprocal=reciprocal, seed=seed,
                   drop_last=drop_last, num_workers=num_workers, transform=transform)

    def make_batch(self, indices: torch.Tensor, generator: torch.Generator | None) -> Any:
        batch = self.items[indices]
        if self.transform is None:
            return batch
        assert generator is not None
        return self.transform(batch, generator)
