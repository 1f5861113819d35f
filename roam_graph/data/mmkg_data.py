"""The format-independent form of a multimodal KG: names, id triples per split, modality features.

Every reader (OpenKE, MoMoK, ConvE, generic TSV, synthetic) produces an ``MMKGData``; the graph
layer turns it into a DGL heterograph. Triples are ``int64 [n, 3]`` tensors with columns
``(head, relation, tail)`` whatever the column order of the file was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from roam_graph.data.errors import DataError

SPLITS: tuple[str, ...] = ("train", "valid", "test")


@dataclass(frozen=True)
class Modality:
    """Per-entity features of one modality (``image``, ``text``, ...).

    ``values`` is float32 ``[num_entities, width]`` in entity-id order; rows of entities whose
    ``present`` flag is False are zero and must never be used as if they were real features.
    """

    values: torch.Tensor
    present: torch.Tensor

    @property
    def width(self) -> int:
        return int(self.values.shape[1])

    @property
    def coverage(self) -> float:
        """Fraction of entities that have this modality."""
        return float(self.present.float().mean()) if self.present.numel() else 0.0


@dataclass(frozen=True)
class MMKGData:
    """A multimodal KG as plain tensors.

    Attributes:
        name: graph name (registry name or the user's folder name).
        entity_names: entity id -> name.
        relation_names: relation id -> name.
        splits: ``"train" | "valid" | "test"`` -> int64 ``[n, 3]`` ``(head, relation, tail)``.
        modalities: modality name -> ``Modality`` (no entry for structure: it is learned).
        entity_texts: optional entity id -> text (name/description) used to make text features.
    """

    name: str
    entity_names: tuple[str, ...]
    relation_names: tuple[str, ...]
    splits: Mapping[str, torch.Tensor]
    modalities: Mapping[str, Modality] = field(default_factory=dict)
    entity_texts: tuple[str | None, ...] | None = None

    @property
    def num_entities(self) -> int:
        return len(self.entity_names)

    @property
    def num_relations(self) -> int:
        return len(self.relation_names)

    def __post_init__(self) -> None:
        check_consistent(self)


def check_consistent(data: MMKGData) -> None:
    """Validate ids, shapes and features; raise ``DataError`` naming the offending value."""
    for split in SPLITS:
        if split not in data.splits:
            raise DataError(f"graph {data.name!r}: split {split!r} is missing")
    for split, triples in data.splits.items():
        if split not in SPLITS:
            raise DataError(f"graph {data.name!r}: unknown split {split!r}; expected {SPLITS}")
        if triples.dtype != torch.int64 or triples.dim() != 2 or triples.shape[1] != 3:
            raise DataError(
                f"graph {data.name!r}: split {split!r} must be int64 [n, 3], "
                f"got {triples.dtype} {tuple(triples.shape)}"
            )
        if triples.shape[0] == 0:
            raise DataError(f"graph {data.name!r}: split {split!r} is empty")
        for column, bound, what in ((0, data.num_entities, "head"),
                                    (1, data.num_relations, "relation"),
                                    (2, data.num_entities, "tail")):
            ids = triples[:, column]
            bad = (ids < 0) | (ids >= bound)
            if bool(bad.any()):
                row = int(bad.nonzero()[0, 0])
                raise DataError(
                    f"graph {data.name!r}: split {split!r} row {row + 1} has {what} id "
                    f"{int(ids[row])}, outside 0..{bound - 1}"
                )
    for name, modality in data.modalities.items():
        check_modality(name, modality, data.num_entities, origin=f"graph {data.name!r}")
    if data.entity_texts is not None and len(data.entity_texts) != data.num_entities:
        raise DataError(
            f"graph {data.name!r}: {len(data.entity_texts)} entity texts for "
            f"{data.num_entities} entities"
        )


def check_modality(name: str, modality: Modality, num_entities: int, origin: str) -> None:
    """Rows must equal the entity count; present rows must be finite. ``origin`` names the file."""
    values, present = modality.values, modality.present
    if values.dim() != 2:
        raise DataError(f"{origin}: {name} features must be 2-D [entities, width], "
                        f"got shape {tuple(values.shape)}")
    if values.shape[0] != num_entities:
        raise DataError(f"{origin}: {name} features have {values.shape[0]} rows but the graph "
                        f"has {num_entities} entities")
    if present.dtype != torch.bool or present.shape != (num_entities,):
        raise DataError(f"{origin}: {name} presence mask must be bool [{num_entities}], "
                        f"got {present.dtype} {tuple(present.shape)}")
    finite = torch.isfinite(values).all(dim=1)
    bad = present & ~finite
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise DataError(f"{origin}: {name} features of entity {row} contain NaN or inf")
