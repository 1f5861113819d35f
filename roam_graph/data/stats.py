"""Graph statistics printed by ``prepare.py --stats``: sizes, modality coverage, data quirks.

Duplicates and train leakage are counted and reported, never fatal: the published splits have
them (DB15K: 8,719 valid triples also in train; KVC16K: 171 duplicate train lines) and results
on these graphs are only comparable if the splits are used as published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from roam_graph.data.mmkg_data import SPLITS, MMKGData


def triple_keys(triples: torch.Tensor, num_entities: int, num_relations: int) -> torch.Tensor:
    """One int64 per triple, equal iff the triples are equal (``(h * R + r) * N + t``)."""
    if num_entities * num_entities * max(num_relations, 1) >= 2**63:
        raise ValueError("graph too large for int64 triple keys")
    return (triples[:, 0] * num_relations + triples[:, 1]) * num_entities + triples[:, 2]


@dataclass(frozen=True)
class GraphStatistics:
    name: str
    entities: int
    relations: int
    split_sizes: Mapping[str, int]
    duplicates: Mapping[str, int]        # rows that repeat an earlier row of the same split
    also_in_train: Mapping[str, int]     # valid/test rows whose triple also occurs in train
    unseen_entities: Mapping[str, int]   # valid/test rows with an entity that is not in train
    modality_coverage: Mapping[str, tuple[int, int]]  # modality -> (entities having it, width)

    def format_table(self) -> str:
        """A plain-text report, one fact per line, numbers with thousands separators."""
        lines = [f"graph {self.name}",
                 f"  entities   {self.entities:>10,}",
                 f"  relations  {self.relations:>10,}"]
        lines += [f"  {split:<10} {self.split_sizes[split]:>10,} triples" for split in SPLITS]
        for modality, (have, width) in self.modality_coverage.items():
            share = 100.0 * have / self.entities if self.entities else 0.0
            lines.append(f"  {modality:<10} {have:>10,} entities ({share:.1f}%), width {width}")
        if not self.modality_coverage:
            lines.append("  modalities none (structure only)")
        lines += [f"  duplicate {split} triples: {self.duplicates[split]:,}" for split in SPLITS]
        lines += [f"  {split} triples also in train: {self.also_in_train[split]:,}"
                  for split in ("valid", "test")]
        lines += [f"  {split} triples with an entity unseen in train: "
                  f"{self.unseen_entities[split]:,}" for split in ("valid", "test")]
        return "\n".join(lines)


def graph_statistics(data: MMKGData) -> GraphStatistics:
    """Compute the statistics with vectorised key lookups (no per-triple Python loop)."""
    keys = {s: triple_keys(data.splits[s], data.num_entities, data.num_relations) for s in SPLITS}
    train_keys = torch.unique(keys["train"])
    train_entities = torch.zeros(data.num_entities, dtype=torch.bool)
    train_entities[data.splits["train"][:, [0, 2]].reshape(-1)] = True
    return GraphStatistics(
        name=data.name,
        entities=data.num_entities,
        relations=data.num_relations,
        split_sizes={s: len(keys[s]) for s in SPLITS},
        duplicates={s: len(keys[s]) - len(torch.unique(keys[s])) for s in SPLITS},
        also_in_train={s: int(torch.isin(keys[s], train_keys).sum()) for s in ("valid", "test")},
        unseen_entities={s: int((~train_entities[data.splits[s][:, [0, 2]]]).any(dim=1).sum())
                         for s in ("valid", "test")},
        modality_coverage={m: (int(v.present.sum()), v.width) for m, v in data.modalities.items()},
    )
