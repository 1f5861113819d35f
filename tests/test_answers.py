"""AnswerIndex answers batches of (head, relation) queries with their known tails."""

from __future__ import annotations

import pytest
import torch

from roam_graph.data.errors import DataError
from roam_graph.graph.answers import AnswerIndex


def reference_answers(triples: torch.Tensor) -> dict[tuple[int, int], set[int]]:
    answers: dict[tuple[int, int], set[int]] = {}
    for h, r, t in triples.tolist():
        answers.setdefault((h, r), set()).add(t)
    return answers


def test_answers_equal_a_dictionary_reference_on_random_triples() -> None:
    generator = torch.Generator().manual_seed(0)
    triples = torch.stack([torch.randint(0, 30, (400,), generator=generator),
                           torch.randint(0, 5, (400,), generator=generator),
                           torch.randint(0, 30, (400,), generator=generator)], dim=1)
    index = AnswerIndex.build(triples, num_entities=30, num_relations=5)
    reference = reference_answers(triples)
    heads = torch.randint(0, 30, (200,), generator=generator)
    relations = torch.randint(0, 5, (200,), generator=generator)
    rows, tails = index.answers(heads, relations)
    for i, (h, r) in enumerate(zip(heads.tolist(), relations.tolist(), strict=True)):
        assert set(tails[rows == i].tolist()) == reference.get((h, r), set())


def test_contains_is_true_exactly_for_known_triples() -> None:
    triples = torch.tensor([[0, 0, 1], [0, 0, 2], [1, 1, 0], [0, 0, 1]])
    index = AnswerIndex.build(triples, num_entities=3, num_relations=2)
    probe = torch.tensor([[0, 0, 1], [0, 0, 0], [1, 1, 0], [2, 1, 0], [0, 1, 1]])
    assert index.contains(probe).tolist() == [True, False, True, False, False]
    assert index.num_queries == 2 and index.offsets.diff().tolist() == [2, 1]


def test_query_rows_round_trip() -> None:
    triples = torch.tensor([[2, 1, 0], [0, 0, 1]])
    index = AnswerIndex.build(triples, num_entities=3, num_relations=2)
    rows = index.query_rows(torch.tensor([2, 0, 1]), torch.tensor([1, 0, 0]))
    assert rows[2] == -1
    heads, relations = index.query_at(rows[:2])
    assert heads.tolist() == [2, 0] and relations.tolist() == [1, 0]


def test_contains_equals_a_set_reference_on_random_probes() -> None:
    generator = torch.Generator().manual_seed(1)

    def random_triples(count: int) -> torch.Tensor:
        return torch.stack([torch.randint(0, 40, (count,), generator=generator),
                            torch.randint(0, 3, (count,), generator=generator),
                            torch.randint(0, 40, (count,), generator=generator)], dim=1)

    triples = random_triples(300)
    index = AnswerIndex.build(triples, 40, 3)
    probe = torch.cat([triples, random_triples(500)])
    known = set(map(tuple, triples.tolist()))
    assert index.contains(probe).tolist() == [tuple(t) in known for t in probe.tolist()]


def test_sizes_whose_triple_keys_overflow_int64_are_refused_with_the_sizes():
    from roam_graph.sampling.negatives import bernoulli_head_probability
    triples = torch.tensor([[0, 0, 1]])
    with pytest.raises(DataError, match="100,000,000 entities x 5,548 relations do not fit"):
        AnswerIndex.build(triples, 10**8, 5548)
    with pytest.raises(DataError, match="Bernoulli negative sampling"):
        bernoulli_head_probability(triples, 10**8, 2774)
    assert AnswerIndex.build(triples, 10**8, 922).num_queries == 1
