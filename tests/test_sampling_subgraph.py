"""Subgraph sampling for experiments: an edge fraction, or the neighbourhood of seed entities."""

from __future__ import annotations

import pytest
import torch

from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.sampling import (
    EdgeBatchSampler,
    neighbourhood_edges,
    random_entities,
    sample_edge_fraction,
)


def row_ids(train: torch.Tensor, subset: torch.Tensor) -> list[int]:
    """Row of each subset triple in train (train rows are distinct in synthetic-tiny)."""
    where = {tuple(t): i for i, t in enumerate(train.tolist())}
    return [where[tuple(t)] for t in subset.tolist()]


@pytest.mark.parametrize("fraction", [0.1, 0.37, 1.0])
def test_fraction_keeps_round_fraction_n_distinct_train_edges_in_order(
        kg: MultimodalKG, fraction: float) -> None:
    train = kg.triples("train")
    assert len(set(map(tuple, train.tolist()))) == len(train)
    subset = sample_edge_fraction(train, fraction, seed=1)
    rows = row_ids(train, subset)  # raises KeyError if a triple is not a train edge
    assert len(subset) == round(fraction * len(train)) == len(set(rows))
    assert rows == sorted(rows)  # original (file) order
    assert torch.equal(subset, sample_edge_fraction(train, fraction, seed=1))
    if fraction < 1:
        assert not torch.equal(subset, sample_edge_fraction(train, fraction, seed=2))


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.01])
def test_fraction_outside_0_1_is_refused(kg: MultimodalKG, fraction: float) -> None:
    with pytest.raises(ValueError, match="edge fraction must be in \\(0, 1\\]"):
        sample_edge_fraction(kg.triples("train"), fraction)


def test_a_fraction_that_keeps_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="keeps no edge"):
        sample_edge_fraction(torch.tensor([[0, 0, 1], [1, 0, 2]]), 0.1)


def reach(train: torch.Tensor, seeds: set[int], hops: int) -> tuple[set[int], set[int]]:
    """Reference BFS over triples (either direction): the rows of every triple touching an
    entity within ``hops - 1`` steps of the seeds, and the entities reached within ``hops``."""
    triples = train.tolist()
    frontier, reached, rows = set(seeds), set(seeds), set()
    for _ in range(hops):
        touching = {i for i, (h, _, t) in enumerate(triples) if h in frontier or t in frontier}
        rows |= touching
        ends = {e for i in touching for e in (triples[i][0], triples[i][2])}
        frontier = ends - reached
        reached |= ends
    return rows, reached


@pytest.mark.parametrize("hops", [1, 2])
def test_full_fanout_neighbourhood_is_every_edge_within_the_hops(kg: MultimodalKG,
                                                                 hops: int) -> None:
    train = kg.triples("train")
    seeds = random_entities(kg.num_entities, 3, seed=0)
    subset = neighbourhood_edges(train, kg.num_entities, seeds, fanout=-1, hops=hops)
    rows, reached = reach(train, set(seeds.tolist()), hops)
    assert set(row_ids(train, subset)) == rows
    induced = neighbourhood_edges(train, kg.num_entities, seeds, -1, hops, induced=True)
    expected = {i for i, (h, _, t) in enumerate(train.tolist()) if h in reached and t in reached}
    assert set(row_ids(train, induced)) == expected


def test_sampled_neighbourhood_returns_only_train_edges_touching_it(kg: MultimodalKG) -> None:
    train = kg.triples("train")
    seeds = random_entities(kg.num_entities, 4, seed=3)
    subset = neighbourhood_edges(train, kg.num_entities, seeds, fanout=2, hops=2, seed=5)
    row_ids(train, subset)  # only train edges
    seed_set = set(seeds.tolist())
    # hop 1 alone (the same draw as the first hop above): <= fanout triples per seed, each
    # touching a seed
    hop1 = neighbourhood_edges(train, kg.num_entities, seeds, fanout=2, hops=1, seed=5)
    assert 0 < len(hop1) <= 2 * len(seed_set)
    assert all(h in seed_set or t in seed_set for h, _, t in hop1.tolist())
    assert set(map(tuple, hop1.tolist())) <= set(map(tuple, subset.tolist()))
    # hop 2 adds only triples touching an entity reached by hop 1
    level1 = seed_set | {e for h, _, t in hop1.tolist() for e in (h, t)}
    assert all(h in level1 or t in level1 for h, _, t in subset.tolist())
    assert len(subset) < len(reach(train, seed_set, 2)[0])  # the fanout did limit it
    again = neighbourhood_edges(train, kg.num_entities, seeds, fanout=2, hops=2, seed=5)
    assert torch.equal(subset, again)
    # the subset plugs straight into the edge sampler
    sampler = EdgeBatchSampler.from_kg(kg, 4, triples=subset)
    assert len(torch.cat(list(sampler))) == len(subset)


@pytest.mark.parametrize(("fanout", "hops", "message"), [
    (0, 1, "fanout must be a positive integer or -1"),
    (3, 0, "hops must be a positive integer"),
])
def test_bad_neighbourhood_settings_are_refused(kg: MultimodalKG, fanout: int, hops: int,
                                               message: str) -> None:
    with pytest.raises(ValueError, match=message):
        neighbourhood_edges(kg.triples("train"), kg.num_entities, torch.tensor([0]), fanout,
                            hops)


def test_seed_entities_must_exist(kg: MultimodalKG) -> None:
    with pytest.raises(ValueError, match="seed entities must be in"):
        neighbourhood_edges(kg.triples("train"), kg.num_entities,
                            torch.tensor([kg.num_entities]), 2, 1)
