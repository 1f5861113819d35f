"""AnswerIndex answers batches of (head, relation) queries with their known tails."""

from __future__ import annotations

import torch

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
    assert index.num_queries == 2 and index.answer_counts().tolist() == [2, 1]


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
