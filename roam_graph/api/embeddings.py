"""The embedding tables of a trained model, with what their rows are.

- every model: ``relation`` (``2R`` rows: each relation, then its reciprocal ``NAME^-1``);
- Tucker: ``entity``, the learned entity embeddings;
- ROAM and MoMoK with the structure modality: ``entity``, the learned structure embeddings;
- ROAM (MoSEG layout): ``entity_group<k>``, each entity's representation fused inside expert
  group k with relation-free modality weights (the candidate side of
  ``candidate_encoding: relation_agnostic`` in model/roam.py); the relation-aware fusion the
  model scores with depends on the query's relation, so it is no per-entity table;
- MoMoK: ``entity_joint``, its fused embedding (the fourth Tucker head's input).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from roam_graph.model import MomokModel, RoamModel, TuckerModel
from roam_graph.model.contract import KGModel


@dataclass(frozen=True)
class EmbeddingTable:
    name: str            # file stem part: entity, relation, entity_group0, ...
    rows: str            # "entities" or "relations"
    values: np.ndarray   # float32 [rows, dim]
    description: str


@torch.inference_mode()
def embedding_tables(model: KGModel) -> list[EmbeddingTable]:
    """Every table of ``model`` (see the module docstring), on the CPU as float32."""
    model.eval()
    tables = [_table("relation", "relations", model.relations.weight,
                     "relation embeddings; rows: relations, then their reciprocals (NAME^-1)")]
    if isinstance(model, TuckerModel):
        return [_table("entity", "entities", model.entities.weight,
                       "learned entity embeddings (structure)"), *tables]
    structure = model.inputs.structure
    if structure is not None:
        tables.insert(0, _table("entity", "entities", structure.weight,
                                "learned structure embeddings (modality input e_is)"))
    if isinstance(model, RoamModel) and model.config.expert_layout == "moseg":
        tables += _group_tables(model)
    if isinstance(model, MomokModel):
        tables.append(_table("entity_joint", "entities", model.encode_entities()[:, -1],
                             "MoMoK's fused entity embedding (relation-free joint attention)"))
    return tables


def _group_tables(model: RoamModel) -> list[EmbeddingTable]:
    """Per expert group: experts' outputs fused with relation-free weights, as roam.py's
    relation-agnostic candidate encoding fuses them (entity term + bias c_m, absent masked)."""
    encoded = model.encode_entities()
    logits = encoded.entity_terms + model.attention.bias[None, :, None]        # [N, M, O]
    weights = model.attention.weights(logits, encoded.present[:, :, None], dim=1)
    fused = (weights.unsqueeze(-1) * encoded.experts_out).sum(dim=1)          # [N, O, d]
    modalities = ", ".join(model.modality_names)
    return [_table(f"entity_group{k}", "entities", fused[:, k],
                   f"entity representation fused in expert group {k} over {modalities} with "
                   "relation-free modality weights") for k in range(fused.shape[1])]


def _table(name: str, rows: str, values: torch.Tensor, description: str) -> EmbeddingTable:
    return EmbeddingTable(name, rows, values.detach().float().cpu().numpy(), description)
