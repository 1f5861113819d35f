"""Statistics count duplicates, train leakage and unseen entities instead of failing on them."""

from __future__ import annotations

import torch

from roam_graph.data import MMKGData, Modality
from roam_graph.data.stats import graph_statistics


def test_duplicates_leakage_and_coverage_are_counted() -> None:
    splits = {
        "train": torch.tensor([[0, 0, 1], [0, 0, 1], [1, 1, 2], [0, 0, 1]]),
        "valid": torch.tensor([[1, 1, 2], [2, 0, 0]]),
        "test": torch.tensor([[0, 0, 3]]),
    }
    text = Modality(torch.ones(4, 3), torch.tensor([True, True, False, True]))
    stats = graph_statistics(MMKGData("g", ("a", "b", "c", "d"), ("r", "s"), splits,
                                      {"text": text}))
    assert stats.split_sizes == {"train": 4, "valid": 2, "test": 1}
    assert stats.duplicates == {"train": 2, "valid": 0, "test": 0}
    assert stats.also_in_train == {"valid": 1, "test": 0}
    assert stats.unseen_entities == {"valid": 0, "test": 1}
    assert stats.modality_coverage == {"text": (3, 3)}
    table = stats.format_table()
    assert "train triples also in train" not in table
    assert "valid triples also in train: 1" in table
    assert "text                3 entities (75.0%), width 3" in table
