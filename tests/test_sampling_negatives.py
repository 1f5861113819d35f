"""Negative sampling: the tail-query convention, and each strategy's defining property."""

from __future__ import annotations

import pytest
import torch

from roam_graph.data import MMKGData
from roam_graph.graph.answers import AnswerIndex
from roam_graph.graph.mmkg import MultimodalKG, reciprocal_triples
from roam_graph.sampling import (
    STRATEGIES,
    DegreeWeighted,
    NegativeBatch,
    NegativeSampler,
    UniformEntities,
    bernoulli_head_probability,
    make_negative_sampler,
)


def small_kg(train: list[list[int]], num_entities: int, num_relations: int,
             valid: list[list[int]] | None = None) -> MultimodalKG:
    splits = {"train": torch.tensor(train), "valid": torch.tensor(valid or [[0, 0, 0]]),
              "test": torch.tensor([[0, 0, 0]])}
    return MultimodalKG.from_data(MMKGData(
        "hand", tuple(f"e{i}" for i in range(num_entities)),
        tuple(f"r{i}" for i in range(num_relations)), splits, {}))


def positives_of(kg: MultimodalKG, count: int, seed: int = 0) -> torch.Tensor:
    train = kg.triples("train")
    rows = torch.randint(0, len(train), (count,), generator=torch.Generator().manual_seed(seed))
    return train[rows]


def known_set(kg: MultimodalKG, splits: list[str]) -> set[tuple[int, int, int]]:
    return set(map(tuple, reciprocal_triples(kg.triples(splits), kg.num_relations).tolist()))


def negative_triples(batch: NegativeBatch) -> list[tuple[int, int, int]]:
    """Every (query head, query relation, negative) of the batch."""
    negatives = batch.expanded()[:, 1:]
    heads = batch.queries[:, :1].expand_as(negatives)
    relations = batch.queries[:, 1:].expand_as(negatives)
    return list(zip(heads.reshape(-1).tolist(), relations.reshape(-1).tolist(),
                    negatives.reshape(-1).tolist(), strict=True))


def test_each_row_is_its_positive_as_a_tail_query(kg: MultimodalKG) -> None:
    positives = positives_of(kg, 2000)
    batch = make_negative_sampler("uniform", kg, k=5)(positives, torch.Generator().manual_seed(1))
    R = kg.num_relations
    assert batch.queries.dtype == batch.candidates.dtype == torch.int64
    assert batch.candidates.shape == (2000, 6) and batch.k == 5
    head, relation = batch.queries[:, 0], batch.queries[:, 1]
    true = batch.candidates[:, 0]                               # column 0: the true tail
    as_tail = torch.stack([head, relation, true], dim=1)
    as_head = torch.stack([true, relation - R, head], dim=1)  # reciprocal query (t, r + R) -> h
    flipped = relation >= R
    assert torch.equal(torch.where(flipped.unsqueeze(1), as_head, as_tail), positives)
    # uniform side choice: about half the rows corrupt the head (binomial sd ~ 22 of 2000)
    assert abs(int(flipped.sum()) - 1000) < 120


def test_tail_only_keeps_reciprocal_positives_as_they_are(kg: MultimodalKG) -> None:
    positives = reciprocal_triples(positives_of(kg, 50), kg.num_relations)
    batch = make_negative_sampler("tail", kg, k=2)(positives)
    assert torch.equal(batch.queries, positives[:, :2])
    assert torch.equal(batch.candidates[:, 0], positives[:, 2])


def test_same_generator_seed_gives_the_same_negatives(kg: MultimodalKG) -> None:
    sampler = make_negative_sampler("bernoulli+degree", kg, k=7)
    positives = positives_of(kg, 64)
    a = sampler(positives, torch.Generator().manual_seed(3))
    b = sampler(positives, torch.Generator().manual_seed(3))
    c = sampler(positives, torch.Generator().manual_seed(4))
    assert torch.equal(a.candidates, b.candidates) and torch.equal(a.queries, b.queries)
    assert not torch.equal(a.candidates, c.candidates)


@pytest.mark.parametrize("spec", ["filtered", "shared+filtered", "bernoulli+degree+filtered",
                                  "type-constrained+filtered"])
def test_filtered_negatives_never_form_a_known_triple(spec: str) -> None:
    # a dense little graph (~3 answers per query among 20 entities): many random candidates
    # are true, so re-sampling is exercised; a shared set must avoid the answers of 4 queries
    generator = torch.Generator().manual_seed(0)
    train = torch.stack([torch.randint(0, 20, (120,), generator=generator),
                         torch.randint(0, 2, (120,), generator=generator),
                         torch.randint(0, 20, (120,), generator=generator)], dim=1)
    graph = small_kg(train.tolist(), 20, 2, valid=[[0, 0, 5], [3, 1, 7]])
    sampler = make_negative_sampler(spec, graph, k=16, chunk_size=4,
                                    filter_splits=("train", "valid"))
    known = known_set(graph, ["train", "valid"])
    unfiltered = make_negative_sampler(spec.replace("+filtered", ""), graph, k=16, chunk_size=4)
    positives = graph.triples("train")
    assert any(t in known for t in negative_triples(unfiltered(positives)))  # test has teeth
    for seed in range(3):
        batch = sampler(positives, torch.Generator().manual_seed(seed))
        assert not any(t in known for t in negative_triples(batch))


def test_filtering_that_cannot_succeed_stops_with_a_clear_error() -> None:
    # entity 0 has every entity as a tail of relation 0: no valid negative exists for (0, r0)
    graph = small_kg([[0, 0, t] for t in range(4)] + [[1, 1, 2]], 4, 2)
    sampler = make_negative_sampler("tail+filtered", graph, k=3, max_rounds=5)
    with pytest.raises(RuntimeError, match="after 5 re-sampling rounds.*query \\(head 0"):
        sampler(torch.tensor([[0, 0, 1]]))


def test_type_constrained_negatives_stay_in_the_relations_observed_range(
        kg: MultimodalKG) -> None:
    train = kg.triples("train").tolist()
    R = kg.num_relations
    observed: dict[int, set[int]] = {}
    for h, r, t in train:
        observed.setdefault(r, set()).add(t)       # tails of r
        observed.setdefault(r + R, set()).add(h)   # heads of r = tails of r + R
    sampler = make_negative_sampler("type-constrained", kg, k=20)
    batch = sampler(positives_of(kg, 500), torch.Generator().manual_seed(2))
    for relation, row in zip(batch.queries[:, 1].tolist(), batch.candidates[:, 1:].tolist(),
                             strict=True):
        assert set(row) <= observed[relation]
    assert sampler.distribution.allowed(R + 3).tolist() == sorted(observed[R + 3])


def test_bernoulli_probabilities_follow_the_definition_on_a_hand_built_graph() -> None:
    train = [
        # r0: heads {0, 1}, tails {2, 3, 4}, 4 distinct triples (one listed twice)
        # tph = 4 / 2 = 2, hpt = 4 / 3, p = 2 / (2 + 4/3) = 0.6
        [0, 0, 2], [0, 0, 3], [0, 0, 4], [1, 0, 2], [0, 0, 2],
        # r1: heads {5, 6, 7}, tail {0}: tph = 1, hpt = 3, p = 1 / 4
        [5, 1, 0], [6, 1, 0], [7, 1, 0],
        # r2: no training triple -> 1/2
    ]
    graph = small_kg(train, 8, 3)
    p = bernoulli_head_probability(graph.triples("train"), 8, 3)
    assert torch.allclose(p, torch.tensor([0.6, 0.25, 0.5], dtype=torch.float64))
    # the sampler corrupts heads with these probabilities (p[r] for r, 1 - p[r] for r + R)
    sampler = make_negative_sampler("bernoulli", graph, k=1)
    assert torch.allclose(sampler.head_probability,
                          torch.tensor([0.6, 0.25, 0.5, 0.4, 0.75, 0.5], dtype=torch.float64))
    positives = torch.tensor([[0, 0, 2]]).repeat(20000, 1)
    flipped = sampler(positives, torch.Generator().manual_seed(0)).queries[:, 1] >= 3
    assert abs(flipped.double().mean().item() - 0.6) < 0.015  # sd 0.0035


def test_degree_weighted_frequencies_follow_degree_to_the_alpha() -> None:
    # degrees: e0 6, e1 3, e2 2, e3 1, e4 0 (isolated)
    train = torch.tensor([[0, 0, 1], [0, 0, 1], [0, 0, 2], [0, 0, 3], [0, 0, 1], [2, 0, 0]])
    alpha = 0.75
    distribution = DegreeWeighted.from_triples(train, 5, alpha=alpha, resolution=3)
    weights = torch.tensor([6.0, 3.0, 2.0, 1.0, 0.0], dtype=torch.float64) ** alpha
    assert torch.allclose(distribution.probabilities, weights / weights.sum())
    draws = distribution.draw(400, 1000, torch.Generator().manual_seed(0)).reshape(-1)
    frequency = torch.bincount(draws, minlength=5).double() / len(draws)
    p = weights / weights.sum()
    sd = (p * (1 - p) / len(draws)).sqrt()
    assert torch.all((frequency - p).abs() <= 5 * sd + 1e-12), (frequency, p)
    assert frequency[4] == 0  # degree 0 is never drawn


def test_shared_negatives_are_identical_within_a_chunk_and_differ_across_chunks(
        kg: MultimodalKG) -> None:
    sampler = make_negative_sampler("shared", kg, k=32, chunk_size=10)
    batch = sampler(positives_of(kg, 95), torch.Generator().manual_seed(0))
    assert batch.candidates.shape == (95, 1) and batch.shared is not None
    assert batch.shared.shape == (10, 32) and batch.k == 32
    assert torch.equal(batch.chunk, torch.arange(95) // 10)
    negatives = batch.expanded()[:, 1:]
    for c in range(10):
        rows = negatives[c * 10:(c + 1) * 10]
        assert torch.equal(rows, rows[:1].expand_as(rows))
    assert not torch.equal(negatives[0], negatives[10])


@pytest.mark.parametrize("k", [0, -3])
def test_k_must_be_positive(kg: MultimodalKG, k: int) -> None:
    with pytest.raises(ValueError, match="k \\(negatives per positive\\) must be a positive"):
        make_negative_sampler("uniform", kg, k=k)


def test_unknown_strategy_lists_the_valid_names(kg: MultimodalKG) -> None:
    with pytest.raises(ValueError, match="unknown negative-sampling strategy 'bernouli'") as err:
        make_negative_sampler("bernouli+filtered", kg, k=4)
    assert all(name in str(err.value) for name in STRATEGIES)


def test_conflicting_strategies_are_refused(kg: MultimodalKG) -> None:
    with pytest.raises(ValueError, match="combines degree and type-constrained"):
        make_negative_sampler("degree+type-constrained", kg, k=4)
    with pytest.raises(ValueError, match="cannot be shared"):
        make_negative_sampler("type-constrained+shared", kg, k=4)


def test_sampler_can_be_composed_by_hand() -> None:
    known = AnswerIndex.build(torch.tensor([[0, 0, 1], [1, 1, 0]]), 3, 2)
    sampler = NegativeSampler(4, 1, UniformEntities(3), known=known)
    batch = sampler(torch.tensor([[0, 0, 1]]), torch.Generator().manual_seed(0))
    assert batch.candidates[0, 0] == 1 and 1 not in batch.candidates[0, 1:].tolist()
