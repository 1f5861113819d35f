"""Train on part of the training graph: a seeded fraction of the edges, or the neighbourhood of
some seed entities (DGL's ``sample_neighbors``, hop by hop).

Both return int64 ``[m, 3]`` triples, a subset of the given training triples in their original
(file) order; pass them to the samplers (``EdgeBatchSampler.from_kg(kg, ..., triples=...)``).
Only training changes: evaluation keeps using the full graph's splits and filters.
"""

from __future__ import annotations

import torch

from roam_graph.graph import dgl_adapter
from roam_graph.sampling.epochs import derive_seed, seeded_generator


def sample_edge_fraction(triples: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """``round(fraction * n)`` distinct triples drawn uniformly without replacement (``round`` is
    Python's, half to even), returned in their original order."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"edge fraction must be in (0, 1], got {fraction}")
    keep = round(fraction * len(triples))
    if keep == 0:
        raise ValueError(f"edge fraction {fraction} of {len(triples)} triples keeps no edge")
    chosen = torch.randperm(len(triples), generator=seeded_generator(seed))[:keep]
    return triples[torch.sort(chosen).values]


def random_entities(num_entities: int, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` distinct entity ids drawn uniformly (seed entities for ``neighbourhood_edges``)."""
    if not 0 < count <= num_entities:
        raise ValueError(f"count must be in 1..{num_entities}, got {count}")
    return torch.randperm(num_entities, generator=seeded_generator(seed))[:count]


def neighbourhood_edges(triples: torch.Tensor, num_entities: int, seeds: torch.Tensor,
                        fanout: int, hops: int, *, seed: int = 0,
                        induced: bool = False) -> torch.Tensor:
    """Training triples around ``seeds``, sampled like a GNN mini-batch.

    Hop 1 samples up to ``fanout`` triples touching each seed entity (as head or tail; ``-1``:
    all of them); their other endpoints not yet reached form the next frontier, and so on for
    ``hops`` hops. Returns the sampled triples, or with ``induced=True`` every triple whose two
    endpoints were reached (denser, more edges per entity).
    """
    if hops <= 0:
        raise ValueError(f"hops must be a positive integer, got {hops}")
    if fanout == 0 or fanout < -1:
        raise ValueError(f"fanout must be a positive integer or -1 (all), got {fanout}")
    seeds = seeds.to(torch.int64).unique()
    if len(seeds) == 0:
        raise ValueError("neighbourhood sampling needs at least one seed entity")
    if seeds.min() < 0 or seeds.max() >= num_entities:
        raise ValueError(f"seed entities must be in 0..{num_entities - 1}")
    heads, tails = triples[:, 0], triples[:, 2]
    graph = dgl_adapter.undirected_graph(heads, tails, num_entities)
    endpoints = torch.cat([heads, tails])  # source of edge e (edge n + i reverses triple i)
    reached = torch.zeros(num_entities, dtype=torch.bool)
    reached[seeds] = True
    frontier, sampled = seeds, []
    for hop in range(hops):
        if len(frontier) == 0:
            break
        edges = dgl_adapter.sample_neighbor_edges(graph, frontier, fanout,
                                                  derive_seed(seed, hop))
        sampled.append(edges % len(triples))
        others = endpoints[edges].unique()
        frontier = others[~reached[others]]
        reached[frontier] = True
    if induced:
        return triples[reached[heads] & reached[tails]]
    return triples[torch.cat(sampled).unique()]  # unique() sorts: original order
