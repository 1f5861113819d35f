"""Models: modality experts -> group fusion -> router -> scorer (ROAM), and the baselines."""

from __future__ import annotations

from collections.abc import Mapping

from roam_graph.data.mmkg_data import Modality
from roam_graph.model.baselines import MomokModel, TuckerModel
from roam_graph.model.config import MODELS, VARIANTS, ModelConfig, resolve_config
from roam_graph.model.contract import KGModel
from roam_graph.model.loss import total_loss, triple_loss
from roam_graph.model.outputs import CandidateEncoding, ModelOutput
from roam_graph.model.roam import RoamModel


def build_model(config: ModelConfig, num_entities: int, num_query_relations: int,
                features: Mapping[str, Modality], seed: int = 0) -> KGModel:
    """The model named by ``config.model``. ``num_query_relations`` is ``2R``: the graph's
    relations and their reciprocals (a graph's ``num_relations`` is ``R``)."""
    if config.model == "tucker":
        return TuckerModel(config, num_entities, num_query_relations)
    if config.model == "momok":
        return MomokModel(config, num_entities, num_query_relations, features, seed)
    return RoamModel(config, num_entities, num_query_relations, features, seed)


__all__ = ["MODELS", "VARIANTS", "CandidateEncoding", "KGModel", "ModelConfig", "ModelOutput",
           "MomokModel", "RoamModel", "TuckerModel", "build_model", "resolve_config",
           "total_loss", "triple_loss"]
