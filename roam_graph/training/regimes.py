"""Training regimes, one object each: which sampler a run draws its batches from, and how a batch
becomes the model's inputs and the loss's targets (LibKGE keeps one training job per regime).

- ``OneToN`` (1-N, K-vs-all, as TuckER and the paper): a batch is a set of unique queries
  ``(head, relation')``; every entity is a candidate and the targets are the query's known
  answers, smoothed.
- ``NegativeSampling``: a batch is a set of training triples, each with ``k`` sampled negative
  tails; the candidates are the true tail (column 0) and the negatives. Large-graph mode
  (docs/SCALING.md) is a setting of this regime, not a regime of its own: it changes the
  optimiser (training/optimisers.py), not the batches.

The trainer only calls ``regime_for(config)``, then ``make_sampler`` and ``inputs``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model.interaction import RelationGroups, relation_groups
from roam_graph.sampling import (
    EdgeBatchSampler,
    NegativeBatch,
    OneToNBatch,
    OneToNSampler,
    ShuffledBatches,
    dense_targets,
    make_negative_sampler,
)
from roam_graph.training.config import ExperimentConfig


@dataclass(frozen=True)
class TrainingInputs:
    """One batch on the training device: query ids, candidate ids (None: every entity), the
    targets the triple loss compares the scores with (``[B, N]`` or ``[B, 1 + k]``), and the
    batch's distinct relations, found on the host (a GPU would otherwise wait for them)."""
    heads: torch.Tensor
    relations: torch.Tensor
    candidates: torch.Tensor | None
    targets: torch.Tensor
    groups: RelationGroups


class Regime(ABC):
    """How a run is fed: its sampler, and a batch's inputs and targets."""

    name: ClassVar[str]
    #: whether the model scores given candidates (the distributed wrapper probes a step with them)
    scores_given_candidates: ClassVar[bool]

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config

    @abstractmethod
    def make_sampler(self, kg: MultimodalKG, batch_size: int,
                     triples: torch.Tensor | None = None) -> ShuffledBatches[Any]:
        """Shuffled, resumable batches over ``kg``'s training triples (or ``triples``)."""

    @abstractmethod
    def inputs(self, batch: Any, device: torch.device) -> TrainingInputs:
        """The batch as the model's inputs and the loss's targets, on ``device``."""


class OneToN(Regime):
    name = "1-n"
    scores_given_candidates = False

    def make_sampler(self, kg: MultimodalKG, batch_size: int,
                     triples: torch.Tensor | None = None) -> OneToNSampler:
        return OneToNSampler.from_kg(kg, batch_size, triples=triples, seed=self.config.seed,
                                     num_workers=self.config.training.num_workers)

    def inputs(self, batch: OneToNBatch, device: torch.device) -> TrainingInputs:
        queries = batch.queries.to(device, non_blocking=True)
        targets = dense_targets(batch, self.config.training.label_smoothing, device)
        return TrainingInputs(queries[:, 0], queries[:, 1], None, targets,
                              relation_groups(batch.queries[:, 1]).to(device))


class NegativeSampling(Regime):
    name = "negative-sampling"
    scores_given_candidates = True

    def make_sampler(self, kg: MultimodalKG, batch_size: int,
                     triples: torch.Tensor | None = None) -> EdgeBatchSampler:
        training = self.config.training
        negatives = make_negative_sampler(training.negative_strategy, kg, training.negatives,
                                          triples=triples, seed=self.config.seed)
        return EdgeBatchSampler.from_kg(kg, batch_size, triples=triples, seed=self.config.seed,
                                        num_workers=training.num_workers, transform=negatives)

    def inputs(self, batch: NegativeBatch, device: torch.device) -> TrainingInputs:
        queries = batch.queries.to(device, non_blocking=True)
        candidates = batch.expanded().to(device, non_blocking=True)
        targets = torch.zeros(candidates.shape, device=device)
        targets[:, 0] = 1.0  # the true tail is the first candidate
        return TrainingInputs(queries[:, 0], queries[:, 1], candidates, targets,
                              relation_groups(batch.queries[:, 1]).to(device))


#: ``training.regime`` -> its class (the config's choice list, training/config.py REGIMES, names
#: the same regimes; a test keeps them equal)
REGIME_CLASSES: dict[str, type[Regime]] = {
    regime.name: regime for regime in (OneToN, NegativeSampling)}


def regime_for(config: ExperimentConfig) -> Regime:
    """The regime ``config.training.regime`` names (validated when the config was loaded)."""
    return REGIME_CLASSES[config.training.regime](config)
