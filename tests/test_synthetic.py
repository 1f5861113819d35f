"""The embedded synthetic graph: deterministic, well-formed, and with a real, documented signal."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from roam_graph.data import SPLITS, DataError, MMKGData
from roam_graph.data.synthetic import (
    CATEGORIES,
    SYNTHETIC_PRESETS,
    SyntheticSpec,
    make_synthetic,
    make_synthetic_with_truth,
)


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic_with_truth("tiny", seed=0)


def _all_triples(data: MMKGData) -> np.ndarray:
    return torch.cat([data.splits[s] for s in SPLITS]).numpy()


def _same(a: MMKGData, b: MMKGData) -> bool:
    return (a.entity_names == b.entity_names and a.relation_names == b.relation_names
            and all(torch.equal(a.splits[s], b.splits[s]) for s in SPLITS)
            and all(torch.equal(a.modalities[m].values, b.modalities[m].values)
                    and torch.equal(a.modalities[m].present, b.modalities[m].present)
                    for m in a.modalities))


def _mean_reciprocal_and_mean_rank(scores: np.ndarray, answers: np.ndarray) -> tuple[float, float]:
    """Ranks with ties counted as the mean of their positions (no lucky tie-breaking)."""
    target = scores[np.arange(len(answers)), answers][:, None]
    rank = (scores > target).sum(1) + 0.5 * ((scores == target).sum(1) - 1) + 1
    return float((1 / rank).mean()), float(rank.mean())


def test_same_preset_and_seed_give_identical_tensors():
    for preset in SYNTHETIC_PRESETS:
        assert _same(make_synthetic(preset, seed=3), make_synthetic(preset, seed=3))


def test_different_seeds_give_different_graphs():
    a, b = make_synthetic("tiny", seed=0), make_synthetic("tiny", seed=1)
    assert not torch.equal(a.splits["train"][:100], b.splits["train"][:100])
    assert not torch.equal(a.modalities["image"].values, b.modalities["image"].values)


def test_generation_leaves_global_random_state_alone():
    np.random.seed(1)
    torch.manual_seed(1)
    numpy_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    first = make_synthetic("tiny", seed=0)
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.random.seed(2)
    torch.manual_seed(2)
    assert _same(first, make_synthetic("tiny", seed=0))


def test_names_sizes_and_widths_follow_the_preset(tiny):
    data, _ = tiny
    spec = SYNTHETIC_PRESETS["tiny"]
    assert data.name == "synthetic-tiny"
    assert make_synthetic("default").name == "synthetic"
    assert data.num_entities == spec.num_entities and data.num_relations == spec.num_relations
    assert data.entity_names[42] == "e00042" and data.relation_names[7] == "r07"
    assert data.modalities["image"].width == spec.image_width
    assert data.modalities["text"].width == spec.text_width
    assert data.entity_texts is None
    assert all(data.splits[s].dtype == torch.int64 for s in SPLITS)
    assert 2000 <= len(data.splits["train"]) <= 3000
    assert isinstance(spec, SyntheticSpec)
    with pytest.raises(AttributeError):
        spec.fan = 9  # frozen


def test_unknown_preset_raises_data_error_naming_the_valid_ones():
    with pytest.raises(DataError, match="huge") as info:
        make_synthetic("huge")
    assert "default" in str(info.value) and "tiny" in str(info.value)


def test_no_duplicate_triples_and_no_self_loops_across_all_splits(tiny):
    triples = _all_triples(tiny[0])
    assert len(np.unique(triples, axis=0)) == len(triples)
    assert not (triples[:, 0] == triples[:, 2]).any()


def test_valid_and_test_entities_and_relations_all_occur_in_train():
    for preset in SYNTHETIC_PRESETS:
        data = make_synthetic(preset, seed=5)
        train = data.splits["train"].numpy()
        seen_entities = set(train[:, 0]) | set(train[:, 2])
        for split in ("valid", "test"):
            rows = data.splits[split].numpy()
            assert set(rows[:, 0]) | set(rows[:, 2]) <= seen_entities
            assert set(rows[:, 1]) <= set(train[:, 1])


def test_split_fractions_follow_the_spec(tiny):
    data, _ = tiny
    spec = SYNTHETIC_PRESETS["tiny"]
    total = sum(len(data.splits[s]) for s in SPLITS)
    assert len(data.splits["valid"]) == round(spec.valid_fraction * total)
    assert len(data.splits["test"]) == round(spec.test_fraction * total)


def test_absent_modality_rows_are_zero_and_coverage_matches_the_spec(tiny):
    data, _ = tiny
    spec = SYNTHETIC_PRESETS["tiny"]
    for name, missing in (("image", spec.image_missing), ("text", spec.text_missing)):
        modality = data.modalities[name]
        assert modality.present.dtype == torch.bool
        assert torch.all(modality.values[~modality.present] == 0)
        assert torch.all(modality.values[modality.present].abs().sum(1) > 0)
        assert modality.coverage == pytest.approx(1 - missing, abs=0.01)
    both_missing = ~data.modalities["image"].present & ~data.modalities["text"].present
    assert float(both_missing.float().mean()) < 0.1  # independent draws, not the same entities


def test_all_four_relation_categories_occur_with_the_labelled_fan_out():
    for preset in SYNTHETIC_PRESETS:
        data, truth = make_synthetic_with_truth(preset, seed=0)
        triples = _all_triples(data)
        assert set(truth.relation_category) == set(CATEGORIES)
        for r, category in enumerate(truth.relation_category):
            rows = triples[triples[:, 1] == r]
            tails_per_head = len(rows) / len(np.unique(rows[:, 0]))
            heads_per_tail = len(rows) / len(np.unique(rows[:, 2]))
            assert (tails_per_head > 1.5) == (category in ("1-N", "N-N")), (r, category)
            assert (heads_per_tail > 1.5) == (category in ("N-1", "N-N")), (r, category)


def test_image_and_text_each_reveal_part_of_the_type_and_together_all(tiny):
    data, truth = tiny
    image, text = data.modalities["image"], data.modalities["text"]
    both = (image.present & text.present).numpy()
    labels = truth.entity_type.numpy()[both]
    views = {"image": image.values.numpy()[both], "text": text.values.numpy()[both]}
    views["both"] = np.concatenate([views["image"], views["text"]], axis=1)
    accuracy = {}
    for name, x in views.items():
        x_fit, x_eval, y_fit, y_eval = train_test_split(x, labels, test_size=0.5, random_state=0,
                                                        stratify=labels)
        probe = LogisticRegression(max_iter=1000).fit(x_fit, y_fit)
        accuracy[name] = probe.score(x_eval, y_eval)
    chance = 1 / SYNTHETIC_PRESETS["tiny"].num_types
    assert accuracy["image"] > 1.5 * chance and accuracy["text"] > 1.5 * chance
    assert accuracy["both"] > 0.7
    assert accuracy["both"] > 2 * max(accuracy["image"], accuracy["text"])


def test_type_count_baseline_ranks_test_tails_far_better_than_random(tiny):
    data, truth = tiny
    kind = truth.entity_type.numpy()
    train, test = data.splits["train"].numpy(), data.splits["test"].numpy()
    counts = np.zeros((data.num_relations, kind.max() + 1, kind.max() + 1))
    np.add.at(counts, (train[:, 1], kind[train[:, 0]], kind[train[:, 2]]), 1)
    scores = counts[test[:, 1], kind[test[:, 0]]][:, kind]  # train frequency of the tail's type
    _, mean_rank = _mean_reciprocal_and_mean_rank(scores, test[:, 2])
    assert mean_rank < 0.25 * (data.num_entities + 1) / 2


def test_ring_positions_predict_tails_well_beyond_their_type(tiny):
    data, truth = tiny
    kind, theta = truth.entity_type.numpy(), truth.angle.numpy()
    shift = truth.relation_shift.numpy()
    train, test = data.splits["train"].numpy(), data.splits["test"].numpy()
    counts = np.zeros((data.num_relations, kind.max() + 1, kind.max() + 1))
    np.add.at(counts, (train[:, 1], kind[train[:, 0]], kind[train[:, 2]]), 1)
    heads, relations, tails = test.T
    by_type = counts[relations, kind[heads]][:, kind]
    ring = np.cos(theta[None, :] - theta[heads, None] - shift[relations, None])  # in [-1, 1]
    type_only, _ = _mean_reciprocal_and_mean_rank(by_type, tails)
    with_ring, _ = _mean_reciprocal_and_mean_rank(by_type + ring, tails)
    assert with_ring > 0.2 and with_ring > 4 * type_only


def test_default_preset_sizes_and_generation_time():
    started = time.perf_counter()
    data = make_synthetic("default", seed=0)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"default synthetic graph took {elapsed:.2f} s"
    assert 2000 <= data.num_entities <= 6000 and 20 <= data.num_relations <= 30
    assert 30_000 <= len(data.splits["train"]) <= 60_000
    assert data.modalities["image"].width == 64 and data.modalities["text"].width == 48
