"""The contract every model keeps with the trainer, the evaluator and the tools (one small base
class, as PyG's knowledge-graph models share one): nobody probes a model with ``hasattr``.

A model scores tails for queries ``(head, relation')`` over the ``2R`` query relations (the
relations and their reciprocals, head prediction being the reciprocal's tail prediction):
- ``encode_entities(ids)`` encodes entities (all of them when ``ids`` is None) once, so that
  evaluation can score many batches against the same encoding;
- ``forward(heads, relations, candidates, candidate_encoding)`` scores the queries against all
  entities ``[B, N]`` or against given candidates ``[B, C]`` and returns a ``ModelOutput``;
- ``modality_names`` are the modalities it uses, ``dropped_modalities`` those the configuration
  asked for but the graph lacks;
- ``sparse_entity_tables()`` switches its entity-indexed tables to sparse gradients
  (large-graph mode, training/optimisers.py);
- ``entity_modality_weights(entities)`` is a relation-free attention over modalities per entity
  where the model has one (MoMoK), else None;
- ``begin_epoch(epoch, epochs)`` lets a model follow a training schedule (ROAM's annealed
  routing); the trainer calls it before each epoch.
Routing (ROAM and the baselines built on its machinery) is reported by
``model/introspection.py`` and ``model/diagnostics.py`` for ``RoamModel``s.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from roam_graph.data.mmkg_data import Modality
from roam_graph.model.config import ModelConfig
from roam_graph.model.inputs import ModalityInputs, available_modalities
from roam_graph.model.interaction import RelationGroups
from roam_graph.model.outputs import ModelOutput


class KGModel(nn.Module, ABC):
    """Base class of every model (module docstring)."""

    config: ModelConfig
    modality_names: tuple[str, ...]
    dropped_modalities: tuple[str, ...] = ()

    @abstractmethod
    def encode_entities(self, ids: torch.Tensor | None = None) -> Any:
        """The candidate-side encoding of entities ``ids`` (all if None)."""

    @abstractmethod
    def forward(self, heads: torch.Tensor, relations: torch.Tensor,
                candidates: torch.Tensor | None = None,
                candidate_encoding: Any = None,
                groups: RelationGroups | None = None) -> ModelOutput:
        """Scores of tails for queries ``(heads, relations)`` (module docstring); ``groups``:
        the batch's distinct relations when the caller has them (computed if None)."""

    def use_modalities(self, config: ModelConfig, features: Mapping[str, Modality]
                       ) -> tuple[str, ...]:
        """Keep ``config`` and the modalities it asks for that ``features`` has (the rest are
        ``dropped_modalities``); returns the kept names."""
        self.config = config
        self.modality_names, self.dropped_modalities = available_modalities(config.modalities,
                                                                            features)
        return self.modality_names

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer before each training epoch (1-based, of ``epochs``), for
        models whose training follows a schedule (ROAM's annealed routing); nothing here."""

    def sparse_entity_tables(self) -> list[nn.Parameter]:
        """Switch the trainable entity-indexed tables (structure embeddings, fine-tuned
        features) to sparse gradients and return them. Idempotent."""
        return [table for module in self.modules() if isinstance(module, ModalityInputs)
                for table in module.use_sparse_gradients()]

    def entity_modality_weights(self, entities: torch.Tensor) -> torch.Tensor | None:
        """Relation-free attention over modalities ``[n, M]`` per entity; None without one."""
        return None
