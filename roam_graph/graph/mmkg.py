"""``MultimodalKG``: a multimodal KG held as a DGL heterograph, with the flat views hot paths use.

The heterograph has one node type ``entity`` and one canonical edge type per relation. Every edge
of every split is in it; ``edata["split"]`` says which split (index into ``SPLITS``) and
``edata["row"]`` its line in that split's file. Node data holds one float32 matrix per modality
(``image``, ``text``, ...) and a bool ``<modality>_present`` mask.

Hot paths (samplers, training, evaluation) never walk the heterograph: they use the cached flat
view (``triples(split)``: int64 ``[n, 3]`` ``(head, relation, tail)`` in file order) or the cached
homogeneous DGL graph with ``dgl.ETYPE``. Head prediction uses reciprocal relations
``r + num_relations``, produced on demand by ``triples(..., reciprocal=True)``; no second copy of
the data is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import torch

from roam_graph.data.errors import DataError, quote
from roam_graph.data.mmkg_data import SPLITS, MMKGData, Modality
from roam_graph.graph import dgl_adapter

PRESENT_SUFFIX = "_present"


class MultimodalKG:
    """A multimodal knowledge graph (see the module docstring for the layout)."""

    def __init__(self, graph: dgl_adapter.DGLGraph, name: str, entity_names: Sequence[str],
                 relation_names: Sequence[str],
                 entity_texts: Sequence[str | None] | None = None) -> None:
        if graph.num_nodes() != len(entity_names):
            raise DataError(f"graph {name!r}: {graph.num_nodes()} nodes but "
                            f"{len(entity_names)} entity names")
        if sorted(dgl_adapter.relation_names(graph)) != sorted(relation_names):
            raise DataError(f"graph {name!r}: edge types do not match the relation names")
        self.graph = graph
        self.name = name
        self.entity_names = tuple(entity_names)
        self.relation_names = tuple(relation_names)
        self.entity_texts = tuple(entity_texts) if entity_texts is not None else None

    @classmethod
    def from_data(cls, data: MMKGData) -> MultimodalKG:
        """Build the heterograph from plain tensors (all splits, with split/row edge data)."""
        triples = torch.cat([data.splits[s] for s in SPLITS])
        split = torch.cat([torch.full((len(data.splits[s]),), i, dtype=torch.int8)
                           for i, s in enumerate(SPLITS)])
        row = torch.cat([torch.arange(len(data.splits[s])) for s in SPLITS])
        features: dict[str, torch.Tensor] = {}
        for modality_name, modality in data.modalities.items():
            features[modality_name] = modality.values.to(torch.float32)
            features[modality_name + PRESENT_SUFFIX] = modality.present
        graph = dgl_adapter.build_heterograph(data.num_entities, data.relation_names, triples,
                                              split, row, features)
        return cls(graph, data.name, data.entity_names, data.relation_names, data.entity_texts)

    def to_data(self) -> MMKGData:
        """The plain-tensor form (for statistics and for building a modified graph)."""
        return MMKGData(self.name, self.entity_names, self.relation_names,
                        {s: self.triples(s) for s in SPLITS}, self.modalities, self.entity_texts)

    # -- sizes and names -------------------------------------------------------------------
    @property
    def num_entities(self) -> int:
        return len(self.entity_names)

    @property
    def num_relations(self) -> int:
        """Relations of the data, without reciprocals."""
        return len(self.relation_names)

    @cached_property
    def _entity_ids(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.entity_names)}

    @cached_property
    def _relation_ids(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.relation_names)}

    def entity_id(self, name: str) -> int:
        try:
            return self._entity_ids[name]
        except KeyError:
            raise DataError(f"graph {self.name!r} has no entity {quote(name)}") from None

    def relation_id(self, name: str) -> int:
        """Id of a relation; ``NAME^-1`` names the reciprocal relation."""
        base = name.removesuffix("^-1")
        if base not in self._relation_ids:
            raise DataError(f"graph {self.name!r} has no relation {quote(base)}")
        return self._relation_ids[base] + (self.num_relations if base != name else 0)

    def relation_name(self, relation_id: int) -> str:
        """Name of a relation id, reciprocal ids ``>= num_relations`` as ``NAME^-1``."""
        if relation_id >= self.num_relations:
            return self.relation_names[relation_id - self.num_relations] + "^-1"
        return self.relation_names[relation_id]

    # -- modalities ------------------------------------------------------------------------
    @property
    def modality_names(self) -> tuple[str, ...]:
        keys = dgl_adapter.entity_features(self.graph)
        return tuple(k for k in keys if not k.endswith(PRESENT_SUFFIX)
                     and k + PRESENT_SUFFIX in keys)

    @property
    def modalities(self) -> dict[str, Modality]:
        features = dgl_adapter.entity_features(self.graph)
        # DGL stores bool node data as uint8: restore the dtype the rest of the code relies on
        return {m: Modality(features[m], features[m + PRESENT_SUFFIX].bool())
                for m in self.modality_names}

    # -- flat views for hot paths ----------------------------------------------------------
    @cached_property
    def _flat(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All edges in file order: sorted by (split, row). Computed once per graph."""
        triples, split, row = dgl_adapter.flat_edges(self.graph, self.relation_names)
        order = torch.argsort(split.to(torch.int64) * (row.max() + 1) + row)
        return triples[order].contiguous(), split[order].contiguous()

    def triples(self, split: str | Sequence[str] = "train", reciprocal: bool = False
                ) -> torch.Tensor:
        """int64 ``[n, 3]`` ``(head, relation, tail)`` of one split or several, in file order.

        With ``reciprocal=True`` the reversed triples ``(t, r + num_relations, h)`` follow the
        originals (so ``n`` doubles): one tail-prediction query per head-prediction query."""
        names = [split] if isinstance(split, str) else list(split)
        unknown = [s for s in names if s not in SPLITS]
        if unknown:
            raise DataError(f"unknown split {unknown[0]!r}; splits are {', '.join(SPLITS)}")
        triples, split_ids = self._flat
        wanted = torch.tensor([SPLITS.index(s) for s in names], dtype=split_ids.dtype)
        selected = triples[torch.isin(split_ids, wanted)] if len(names) < len(SPLITS) else triples
        return reciprocal_triples(selected, self.num_relations) if reciprocal else selected

    @cached_property
    def homogeneous(self) -> dgl_adapter.DGLGraph:
        """Homogeneous DGL view with ``edata[dgl.ETYPE]`` (DGL's sorted edge-type order)."""
        return dgl_adapter.to_homogeneous(self.graph)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(self.triples(s))}" for s in SPLITS)
        mods = ", ".join(f"{m}[{v.width}]" for m, v in self.modalities.items()) or "none"
        return (f"MultimodalKG({self.name!r}, entities={self.num_entities}, "
                f"relations={self.num_relations}, {sizes}, modalities={mods})")


def reciprocal_triples(triples: torch.Tensor, num_relations: int) -> torch.Tensor:
    """``[(h, r, t)] + [(t, r + num_relations, h)]``: head prediction as tail prediction."""
    reversed_ = torch.stack([triples[:, 2], triples[:, 1] + num_relations, triples[:, 0]], dim=1)
    return torch.cat([triples, reversed_])
