"""The `routing` synthetic preset: every relation is decided by one entity key, shown by the image
only, by the text only, or by no feature at all; the classic presets are exactly what they were."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from roam_datasets.registry import SYNTHETIC
from roam_graph.data import SPLITS, DataError, MMKGData
from roam_graph.data.synthetic import (
    CATEGORIES,
    FAMILIES,
    MIXED,
    SYNTHETIC_PRESETS,
    generate_synthetic,
    make_synthetic,
    make_synthetic_with_truth,
)
from roam_graph.graph.prepare import PrepareOptions, prepare_graph

# Computed with the generator as it was before the `families` field existed (seed 0). Features
# are hashed rounded to 1e-4 because they go through a BLAS matrix product.
CLASSIC_DIGESTS = {
    "default": "558d5e7efaf14300e265920cb57c6a1357f39cdd743690f3e2b17ebaef22d0da",
    "tiny": "7bda47c582f302e2028ae8fb429c7d0198d93c161088e196a67cb382c62a8e09",
}


@pytest.fixture(scope="module")
def routing():
    return make_synthetic_with_truth("routing", seed=0)


def _digest(data: MMKGData) -> str:
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update(data.splits[split].numpy().tobytes())
    for name in ("image", "text"):
        modality = data.modalities[name]
        digest.update(modality.present.numpy().tobytes())
        digest.update(np.round(modality.values.numpy().astype(np.float64), 4).tobytes())
    return digest.hexdigest()


def _all_triples(data: MMKGData) -> np.ndarray:
    return torch.cat([data.splits[s] for s in SPLITS]).numpy()


def _rows_of_family(data: MMKGData, truth, family: str) -> np.ndarray:
    triples = _all_triples(data)
    return triples[np.array(truth.relation_family)[triples[:, 1]] == family]


def _majority_share(rows: np.ndarray, kind: np.ndarray) -> float:
    """How far the tail's type is a function of (relation, head's type): the share of rows whose
    tail type is the most common one of their (relation, head type) group. 1 = a function."""
    counts = Counter(zip(rows[:, 1], kind[rows[:, 0]], kind[rows[:, 2]], strict=True))
    best: Counter = Counter()
    for (relation, head, _), n in counts.items():
        best[relation, head] = max(best[relation, head], n)
    return sum(best.values()) / len(rows)


def _ring_alignment(rows: np.ndarray, angle: np.ndarray) -> float:
    """Mean over relations of |mean exp(i (theta_t - theta_h))|: near 1 when the tail's angle is
    the head's plus a per-relation shift, near 0 (about 1/sqrt(n)) when they are independent."""
    gap = np.exp(1j * (angle[rows[:, 2]] - angle[rows[:, 0]]))
    return float(np.mean([abs(gap[rows[:, 1] == r].mean()) for r in np.unique(rows[:, 1])]))


@pytest.mark.parametrize("preset", sorted(CLASSIC_DIGESTS))
def test_classic_presets_generate_exactly_what_they_did_before_families(preset):
    assert _digest(make_synthetic(preset, seed=0)) == CLASSIC_DIGESTS[preset]


def test_classic_presets_keep_their_repr_and_have_one_mixed_key():
    for preset in ("default", "tiny"):
        assert "families" not in repr(SYNTHETIC_PRESETS[preset])  # cache fingerprints unchanged
        _, truth = make_synthetic_with_truth(preset, seed=0)
        assert set(truth.relation_family) == {MIXED}
        assert list(truth.key_type) == [MIXED] and list(truth.key_angle) == [MIXED]
        assert torch.equal(truth.key_type[MIXED], truth.entity_type)
        assert torch.equal(truth.key_angle[MIXED], truth.angle)
    assert "families=('image', 'text', 'structure')" in repr(SYNTHETIC_PRESETS["routing"])


def test_routing_is_deterministic_in_preset_and_seed():
    (a, truth_a), (b, truth_b) = (make_synthetic_with_truth("routing", seed=3) for _ in range(2))
    assert _digest(a) == _digest(b)
    assert truth_a.relation_family == truth_b.relation_family
    assert all(torch.equal(truth_a.key_angle[k], truth_b.key_angle[k]) for k in FAMILIES)
    assert _digest(make_synthetic("routing", seed=4)) != _digest(a)


def test_routing_is_a_registered_graph_like_synthetic(data_dir: Path):
    assert SYNTHETIC["synthetic-routing"] == "routing"
    prepared = prepare_graph(PrepareOptions("synthetic-routing"), log=lambda _: None)
    assert prepared.kg.name == "synthetic-routing" == make_synthetic("routing").name
    assert prepared.kg.num_entities == 4000


def test_routing_sizes_and_feature_settings_follow_the_default_preset(routing):
    data, _ = routing
    default, spec = SYNTHETIC_PRESETS["default"], SYNTHETIC_PRESETS["routing"]
    assert replace(spec, families=()) == default
    total = sum(len(data.splits[s]) for s in SPLITS)
    assert data.num_entities == 4000 and data.num_relations == 24
    assert 35_000 <= total <= 45_000
    assert len(data.splits["valid"]) == len(data.splits["test"]) == round(0.05 * total)
    assert data.modalities["image"].width == 64 and data.modalities["text"].width == 48
    assert data.modalities["image"].coverage == pytest.approx(0.88, abs=0.01)
    assert data.modalities["text"].coverage == pytest.approx(0.85, abs=0.01)


def test_relations_are_dealt_evenly_over_families_and_categories(routing):
    _, truth = routing
    pairs = Counter(zip(truth.relation_family, truth.relation_category, strict=True))
    assert set(pairs) == {(f, c) for f in FAMILIES for c in CATEGORIES}
    assert set(pairs.values()) == {24 // (len(FAMILIES) * len(CATEGORIES))}
    assert set(truth.key_type) == set(truth.key_angle) == set(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_familys_tails_follow_its_key_and_ignore_the_other_keys(routing, family):
    data, truth = routing
    rows = _rows_of_family(data, truth, family)
    kind = truth.key_type[family].numpy()
    # the planted rule: tail type = tail_types[r, b] where head type = head_types[r, b]
    heads, tails = truth.head_types.tolist(), truth.tail_types.tolist()
    mapped = {(r, h): t for r in range(data.num_relations)
              for h, t in zip(heads[r], tails[r], strict=True)}
    follows = [mapped.get((r, kind[h])) == kind[t] for h, r, t in rows]
    assert np.mean(follows) > 0.95  # all but the ~3 % corrupted tails
    assert _majority_share(rows, kind) > 0.95
    assert _ring_alignment(rows, truth.key_angle[family].numpy()) > 0.8
    shift = truth.relation_shift.numpy()[rows[:, 1]]
    angle = truth.key_angle[family].numpy()
    assert np.cos(angle[rows[:, 2]] - angle[rows[:, 0]] - shift).mean() > 0.8
    for other in set(FAMILIES) - {family}:  # independent: chance level (1/36 types, 1/sqrt(n))
        assert _majority_share(rows, truth.key_type[other].numpy()) < 0.2
        assert _ring_alignment(rows, truth.key_angle[other].numpy()) < 0.1


def test_image_and_text_features_each_show_their_own_key_only(routing):
    data, truth = routing
    chance = 1 / SYNTHETIC_PRESETS["routing"].num_types
    for modality in ("image", "text"):
        present = data.modalities[modality].present.numpy()
        x = data.modalities[modality].values.numpy()[present]
        for key in FAMILIES:
            y = truth.key_type[key].numpy()[present]
            x_fit, x_eval, y_fit, y_eval = train_test_split(x, y, test_size=0.5, random_state=0,
                                                            stratify=y)
            accuracy = LogisticRegression(max_iter=1000).fit(x_fit, y_fit).score(x_eval, y_eval)
            if key == modality:
                assert accuracy > 0.5, (modality, key, accuracy)
            else:
                assert accuracy < 2 * chance, (modality, key, accuracy)


def test_head_features_predict_the_tail_only_for_their_own_family(routing):
    """Per relation, a probe from the head's features to the tail's key type (split by head, so it
    cannot memorise heads), scored as accuracy above the majority class."""
    data, truth = routing
    triples = _all_triples(data)
    lift: dict[tuple[str, str], list[float]] = {}
    for r, family in enumerate(truth.relation_family):
        for modality in ("image", "text"):
            rows = triples[triples[:, 1] == r]
            rows = rows[data.modalities[modality].present.numpy()[rows[:, 0]]]
            x = data.modalities[modality].values.numpy()[rows[:, 0]]
            y = truth.key_type[family].numpy()[rows[:, 2]]
            fit, score = next(GroupShuffleSplit(1, test_size=0.5, random_state=0)
                              .split(x, y, groups=rows[:, 0]))
            accuracy = LogisticRegression(max_iter=500).fit(x[fit], y[fit]).score(x[score],
                                                                                 y[score])
            majority = np.bincount(y[fit]).max() / len(fit)
            lift.setdefault((family, modality), []).append(accuracy - majority)
    mean = {pair: float(np.mean(values)) for pair, values in lift.items()}
    assert mean["image", "image"] > 0.4 and mean["text", "text"] > 0.4, mean
    for pair in [("image", "text"), ("text", "image"), ("structure", "image"),
                 ("structure", "text")]:
        assert mean[pair] < 0.05, mean


def test_families_must_be_distinct_known_names():
    spec = SYNTHETIC_PRESETS["tiny"]
    for families in (("image", "colour"), ("text", "text")):
        with pytest.raises(DataError, match="families"):
            generate_synthetic(replace(spec, families=families))
    _, truth = generate_synthetic(replace(spec, families=("image", "text")), seed=0)
    assert set(truth.relation_family) == {"image", "text"}
    assert set(truth.key_type) == set(FAMILIES)  # every key exists; structure just goes unused


def test_routing_config_trains_with_the_same_settings_as_the_default_graph():
    configs = Path(__file__).resolve().parents[1] / "configs"
    routing, default = (yaml.safe_load((configs / f"{name}.yaml").read_text(encoding="utf-8"))
                        for name in ("synthetic-routing", "synthetic"))
    assert routing.pop("graph") == "synthetic-routing" and default.pop("graph") == "synthetic"
    assert routing == default
