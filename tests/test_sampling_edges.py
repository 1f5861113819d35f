"""Edge-batch sampler: every training edge once per epoch, seeded order, exact resume, workers."""

from __future__ import annotations

import pytest
import torch

from roam_graph.graph.mmkg import MultimodalKG, reciprocal_triples
from roam_graph.sampling import EdgeBatchSampler, make_negative_sampler


def as_sorted_rows(triples: torch.Tensor) -> list[tuple[int, int, int]]:
    """The multiset of rows, comparable with ``==`` (duplicates kept)."""
    return sorted(map(tuple, triples.tolist()))


def epoch_batches(sampler: EdgeBatchSampler) -> list[torch.Tensor]:
    return list(sampler)


@pytest.mark.parametrize("reciprocal", [False, True])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_each_training_edge_is_visited_exactly_once_per_epoch(
        kg: MultimodalKG, reciprocal: bool, num_workers: int) -> None:
    train = kg.triples("train")
    sampler = EdgeBatchSampler.from_kg(kg, 300, reciprocal=reciprocal, seed=3,
                                       num_workers=num_workers)
    expected = reciprocal_triples(train, kg.num_relations) if reciprocal else train
    for _ in range(2):  # two epochs, each a full pass
        batches = epoch_batches(sampler)
        assert all(b.dtype == torch.int64 and b.shape[1] == 3 for b in batches)
        assert [len(b) for b in batches[:-1]] == [300] * (len(batches) - 1)
        assert as_sorted_rows(torch.cat(batches)) == as_sorted_rows(expected)
    assert sampler.epoch == 2


def test_workers_give_the_same_batches_as_the_main_process(kg: MultimodalKG) -> None:
    negatives = make_negative_sampler("bernoulli", kg, k=4)
    plain = EdgeBatchSampler.from_kg(kg, 256, seed=5, transform=negatives)
    forked = EdgeBatchSampler.from_kg(kg, 256, seed=5, transform=negatives, num_workers=2)
    for a, b in zip(list(plain), list(forked), strict=True):
        assert torch.equal(a.queries, b.queries) and torch.equal(a.candidates, b.candidates)


def test_same_seed_same_batches_and_different_seed_different_order(kg: MultimodalKG) -> None:
    first = torch.cat(epoch_batches(EdgeBatchSampler.from_kg(kg, 128, seed=1)))
    again = torch.cat(epoch_batches(EdgeBatchSampler.from_kg(kg, 128, seed=1)))
    other = torch.cat(epoch_batches(EdgeBatchSampler.from_kg(kg, 128, seed=2)))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert as_sorted_rows(first) == as_sorted_rows(other)


def test_each_epoch_has_its_own_order_independent_of_history(kg: MultimodalKG) -> None:
    sampler = EdgeBatchSampler.from_kg(kg, 128, seed=1)
    epoch0, epoch1 = torch.cat(list(sampler)), torch.cat(list(sampler))
    assert not torch.equal(epoch0, epoch1)
    jumped = EdgeBatchSampler.from_kg(kg, 128, seed=1)
    jumped.set_epoch(1)  # epoch 1 without having run epoch 0
    assert torch.equal(torch.cat(list(jumped)), epoch1)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_from_state_dict_mid_epoch_yields_the_same_remaining_batches(
        kg: MultimodalKG, num_workers: int) -> None:
    negatives = make_negative_sampler("uniform+filtered", kg, k=3)

    def make() -> EdgeBatchSampler:
        return EdgeBatchSampler.from_kg(kg, 200, reciprocal=True, seed=7, transform=negatives,
                                        num_workers=num_workers)

    reference = make()
    uninterrupted = list(reference) + list(reference)  # epochs 0 and 1
    interrupted = make()
    seen = []
    for batch in interrupted:
        seen.append(batch)
        if len(seen) == 5:
            break
    state = interrupted.state_dict()
    assert (state["epoch"], state["position"]) == (0, 5)
    resumed = make()
    resumed.load_state_dict(state)
    rest = list(resumed) + list(resumed)
    assert len(seen) + len(rest) == len(uninterrupted)
    # the interrupted sampler itself also continues where it stopped
    continued = list(interrupted) + list(interrupted)
    for a, b, c in zip(seen + rest, seen + continued, uninterrupted, strict=True):
        assert torch.equal(a.queries, c.queries) and torch.equal(a.candidates, c.candidates)
        assert torch.equal(b.queries, c.queries) and torch.equal(b.candidates, c.candidates)


def test_a_state_after_the_last_batch_resumes_at_the_next_epoch(kg: MultimodalKG) -> None:
    sampler = EdgeBatchSampler.from_kg(kg, 500, seed=0)
    for index, _ in enumerate(sampler):
        if index == len(sampler) - 1:
            break  # consumer stops right after the last batch
    resumed = EdgeBatchSampler.from_kg(kg, 500, seed=0)
    resumed.load_state_dict(sampler.state_dict())
    reference = EdgeBatchSampler.from_kg(kg, 500, seed=0)
    reference.set_epoch(1)
    assert torch.equal(torch.cat(list(resumed)), torch.cat(list(reference)))


def test_state_of_a_different_sampler_is_refused(kg: MultimodalKG) -> None:
    state = EdgeBatchSampler.from_kg(kg, 100, seed=0).state_dict()
    with pytest.raises(ValueError, match="batch_size=100"):
        EdgeBatchSampler.from_kg(kg, 64, seed=0).load_state_dict(state)


def test_drop_last_drops_only_the_short_batch(kg: MultimodalKG) -> None:
    n = len(kg.triples("train"))
    sampler = EdgeBatchSampler.from_kg(kg, 1000, drop_last=True)
    assert len(sampler) == n // 1000
    assert [len(b) for b in sampler] == [1000] * (n // 1000)


@pytest.mark.parametrize("batch_size", [0, -5])
def test_batch_size_must_be_positive(kg: MultimodalKG, batch_size: int) -> None:
    with pytest.raises(ValueError, match="batch size must be a positive integer"):
        EdgeBatchSampler.from_kg(kg, batch_size)


def test_reciprocal_needs_the_relation_count() -> None:
    with pytest.raises(ValueError, match="num_relations"):
        EdgeBatchSampler(torch.tensor([[0, 0, 1]]), 1, reciprocal=True)
