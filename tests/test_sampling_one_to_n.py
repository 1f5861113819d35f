"""1-N batches: unique train queries once per epoch, targets equal to the known answers, exact
label smoothing, seeded and resumable order."""

from __future__ import annotations

import pytest
import torch

from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.sampling import OneToNBatch, OneToNSampler, dense_targets


def reference_answers(kg: MultimodalKG) -> dict[tuple[int, int], set[int]]:
    """(h, r) -> tails and (t, r + R) -> heads, from the training triples."""
    answers: dict[tuple[int, int], set[int]] = {}
    for h, r, t in kg.triples("train").tolist():
        answers.setdefault((h, r), set()).add(t)
        answers.setdefault((t, r + kg.num_relations), set()).add(h)
    return answers


def batch_answers(batch: OneToNBatch) -> dict[tuple[int, int], set[int]]:
    found: dict[tuple[int, int], set[int]] = {tuple(q): set() for q in batch.queries.tolist()}
    queries = batch.queries.tolist()
    for row, tail in zip(batch.target_rows.tolist(), batch.target_tails.tolist(), strict=True):
        found[tuple(queries[row])].add(tail)
    return found


def test_an_epoch_visits_each_query_once_with_exactly_its_known_answers(
        kg: MultimodalKG) -> None:
    reference = reference_answers(kg)
    sampler = OneToNSampler.from_kg(kg, 128, seed=0)
    batches = list(sampler)
    queries = [tuple(q) for b in batches for q in b.queries.tolist()]
    assert len(queries) == len(set(queries)) == len(reference)  # each query exactly once
    for batch in batches:
        assert batch.queries.dtype == batch.target_rows.dtype == torch.int64
        for query, tails in batch_answers(batch).items():
            assert tails == reference[query]
        dense = dense_targets(batch)
        assert dense.shape == (len(batch), kg.num_entities) and dense.dtype == torch.float32
        assert dense.sum().item() == len(batch.target_rows)  # 0/1 values, one per answer
        assert torch.all(dense[batch.target_rows, batch.target_tails] == 1.0)


def test_label_smoothing_values_are_exact() -> None:
    batch = OneToNBatch(torch.tensor([[0, 0], [1, 0]]), torch.tensor([0, 0, 1]),
                        torch.tensor([2, 4, 0]), num_entities=7)
    eps = 0.1
    dense = dense_targets(batch, label_smoothing=eps)
    on = torch.tensor((1 - eps) + eps / 7, dtype=torch.float64).float()  # y (1 - eps) + eps / N
    off = torch.tensor(eps / 7, dtype=torch.float64).float()
    expected = torch.full((2, 7), off.item())
    expected[0, 2] = expected[0, 4] = expected[1, 0] = on.item()
    assert torch.equal(dense, expected)


@pytest.mark.parametrize("eps", [-0.1, 1.0, 1.5])
def test_label_smoothing_outside_0_1_is_refused(eps: float) -> None:
    batch = OneToNBatch(torch.tensor([[0, 0]]), torch.tensor([0]), torch.tensor([1]), 3)
    with pytest.raises(ValueError, match="label_smoothing must be in \\[0, 1\\)"):
        dense_targets(batch, eps)


def test_order_is_seeded_and_changes_between_epochs(kg: MultimodalKG) -> None:
    def first_queries(sampler: OneToNSampler) -> torch.Tensor:
        return torch.cat([b.queries for b in sampler])

    a = OneToNSampler.from_kg(kg, 256, seed=4)
    epoch0, epoch1 = first_queries(a), first_queries(a)
    assert torch.equal(epoch0, first_queries(OneToNSampler.from_kg(kg, 256, seed=4)))
    assert not torch.equal(epoch0, epoch1)
    assert not torch.equal(epoch0, first_queries(OneToNSampler.from_kg(kg, 256, seed=5)))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_mid_epoch_and_workers_give_the_uninterrupted_batches(
        kg: MultimodalKG, num_workers: int) -> None:
    reference = OneToNSampler.from_kg(kg, 200, seed=9)
    uninterrupted = list(reference) + list(reference)
    interrupted = OneToNSampler.from_kg(kg, 200, seed=9, num_workers=num_workers)
    seen = []
    for batch in interrupted:
        seen.append(batch)
        if len(seen) == 3:
            break
    resumed = OneToNSampler.from_kg(kg, 200, seed=9, num_workers=num_workers)
    resumed.load_state_dict(interrupted.state_dict())
    replay = seen + list(resumed) + list(resumed)
    assert len(replay) == len(uninterrupted)
    for a, b in zip(replay, uninterrupted, strict=True):
        assert torch.equal(a.queries, b.queries) and torch.equal(a.target_rows, b.target_rows)
        assert torch.equal(a.target_tails, b.target_tails)


def test_batch_size_must_be_positive(kg: MultimodalKG) -> None:
    with pytest.raises(ValueError, match="batch size must be a positive integer"):
        OneToNSampler.from_kg(kg, 0)
