"""Baselines: structure-only Tucker, and MoMoK as its public code (zjukg/MoMoK) builds it.

MoMoK (Zhang et al. 2025): per modality, K linear experts mixed by a softmax gate whose
temperature is per relation (the only way the relation enters); noisy gating in training; four
Tucker heads (structure, image, text, and a fused embedding) whose BCE losses are summed in
training and whose scores are averaged for ranking; candidates pass through the experts WITHOUT
the relation (temperature 1), so scoring stays one matmul per head. The Sinkhorn-MoE baseline is
a configuration of ``RoamModel`` (config.py: MODEL_DEFAULTS).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from roam_graph.data.mmkg_data import Modality
from roam_graph.model.config import ModelConfig
from roam_graph.model.contract import KGModel
from roam_graph.model.inputs import ModalityInputs
from roam_graph.model.interaction import (
    RelationGroups,
    TuckerInteraction,
    relation_groups,
    score_all,
    score_candidates,
)
from roam_graph.model.outputs import ModelOutput


class TuckerModel(KGModel):
    """TuckER with learned entity and relation embeddings (structure only)."""

    def __init__(self, config: ModelConfig, num_entities: int, num_relations: int) -> None:
        super().__init__()
        self.config = config
        self.modality_names = ("structure",)
        self.dropped_modalities = tuple(m for m in config.modalities if m != "structure")
        self.entities = nn.Embedding(num_entities, config.dim)
        self.relations = nn.Embedding(num_relations, config.relation_dim)
        nn.init.xavier_normal_(self.entities.weight)
        nn.init.xavier_normal_(self.relations.weight)
        self.tucker = TuckerInteraction(config.dim, config.relation_dim, config.input_dropout,
                                        config.hidden_dropout1, config.hidden_dropout2)

    def encode_entities(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.entities.weight if ids is None else self.entities(ids)

    def sparse_entity_tables(self) -> list[nn.Parameter]:
        self.entities.sparse = True
        return [self.entities.weight]

    def forward(self, heads: torch.Tensor, relations: torch.Tensor,
                candidates: torch.Tensor | None = None,
                candidate_encoding: torch.Tensor | None = None,
                groups: RelationGroups | None = None) -> ModelOutput:
        groups = groups or relation_groups(relations)
        query = self.tucker.query(self.entities(heads), self.relations(groups.unique),
                                  groups.inverse)
        if candidates is None:
            entities = candidate_encoding if candidate_encoding is not None \
                else self.entities.weight
            scores = score_all(query, entities)
        else:
            scores = score_candidates(query, self.entities(candidates))
        return ModelOutput(scores=scores, head_scores=(scores,), ot_loss=scores.new_zeros(()))


class MomokModel(KGModel):
    def __init__(self, config: ModelConfig, num_entities: int, num_relations: int,
                 features: Mapping[str, Modality], seed: int = 0) -> None:
        super().__init__()
        names = self.use_modalities(config, features)
        m_count, k, dim = len(names), config.num_groups, config.dim
        self.inputs = ModalityInputs(num_entities, dim, names, features,
                                     config.finetune_features, config.input_noise, seed,
                                     config.feature_width)
        self.experts = nn.Parameter(torch.randn(m_count, k, dim, dim) * dim ** -0.5)
        self.gates = nn.Parameter(torch.zeros(m_count, dim, k))
        self.gate_noise = nn.Parameter(torch.zeros(m_count, dim, k))
        self.temperature = nn.Parameter(torch.zeros(num_relations, m_count))  # softplus -> >0
        self.joint_attention = nn.Parameter(torch.zeros(m_count, dim))
        self.relations = nn.Embedding(num_relations, config.relation_dim)
        nn.init.xavier_normal_(self.relations.weight)
        self.heads = nn.ModuleList(
            TuckerInteraction(dim, config.relation_dim, config.input_dropout,
                              config.hidden_dropout1, config.hidden_dropout2)
            for _ in range(m_count + 1))

    def _experts(self, raw: torch.Tensor, temperature: torch.Tensor | None,
                 noisy: bool) -> torch.Tensor:
        """Gated mixture of linear experts per modality: ``[n, M, d]`` -> ``[n, M, d]``."""
        logits = torch.einsum("nmd,mdk->nmk", raw, self.gates)
        if noisy:
            scale = F.softplus(torch.einsum("nmd,mdk->nmk", raw, self.gate_noise))
            logits = logits + torch.randn_like(logits) * scale
        if temperature is not None:
            logits = logits / temperature.unsqueeze(-1)
        gate = torch.softmax(logits, dim=-1)
        experts_out = torch.einsum("nmd,mkde->nmke", raw, self.experts)
        return (gate.unsqueeze(-1) * experts_out).sum(dim=2)

    def _with_joint(self, per_modality: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Append the fused embedding (relation-free attention over present modalities)."""
        logits = (per_modality * self.joint_attention).sum(-1).masked_fill(~present, -1e9)
        weights = torch.softmax(logits, dim=-1).unsqueeze(-1)
        return torch.cat([per_modality, (weights * per_modality).sum(1, keepdim=True)], dim=1)

    @torch.inference_mode()
    def entity_modality_weights(self, entities: torch.Tensor) -> torch.Tensor:
        """The relation-free joint attention over modalities per entity ``[n, M]`` (Fig. 6)."""
        raw, present = self.inputs(entities)
        per_modality = self._experts(raw, None, noisy=False)
        logits = (per_modality * self.joint_attention).sum(-1).masked_fill(~present, -1e9)
        return torch.softmax(logits, dim=-1)

    def encode_entities(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Candidate side, relation-agnostic: ``[n, M + 1, d]``."""
        raw, present = self.inputs(ids)
        return self._with_joint(self._experts(raw, None, noisy=False), present)

    def forward(self, heads: torch.Tensor, relations: torch.Tensor,
                candidates: torch.Tensor | None = None,
                candidate_encoding: torch.Tensor | None = None,
                groups: RelationGroups | None = None) -> ModelOutput:
        groups = groups or relation_groups(relations)
        unique_relation_vectors = self.relations(groups.unique)
        raw, present = self.inputs(heads)
        temperature = F.softplus(self.temperature[relations]) + 0.1
        query_side = self._with_joint(self._experts(raw, temperature, self.training), present)
        if candidates is None:
            encoded = candidate_encoding if candidate_encoding is not None \
                else self.encode_entities()
        else:
            encoded = self.encode_entities(candidates.reshape(-1)).view(
                *candidates.shape, query_side.shape[1], -1)
        head_scores = []
        for index, head in enumerate(self.heads):
            query = head.query(query_side[:, index], unique_relation_vectors, groups.inverse)
            head_scores.append(score_all(query, encoded[:, index]) if candidates is None
                               else score_candidates(query, encoded[:, :, index]))
        scores = torch.stack(head_scores).mean(dim=0)
        return ModelOutput(scores=scores, head_scores=tuple(head_scores),
                           ot_loss=scores.new_zeros(()))
