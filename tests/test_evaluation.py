"""The evaluator: filtered ranks with optimistic / pessimistic / realistic ties in both directions,
checked against a slow pure-Python reference; metrics, relation categories, errors."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import pytest
import torch

from roam_graph.data import MMKGData
from roam_graph.evaluation import (
    CATEGORIES,
    UNSEEN,
    NaNScoreError,
    build_filter,
    evaluate,
    filtered_ranks,
    rank_metrics,
    ranking,
    relation_cardinality,
    relation_categories,
)
from roam_graph.graph.answers import AnswerIndex
from roam_graph.graph.mmkg import MultimodalKG, reciprocal_triples

N, R = 13, 3


# -- the slow, obviously-correct reference -------------------------------------------------------
def reference_rank(scores: list[float], target: int, known: set[int]) -> tuple[float, float]:
    """(optimistic, pessimistic) by looping over every candidate."""
    better = tied = 0
    for candidate, score in enumerate(scores):
        if candidate == target or candidate in known:
            continue
        if score > scores[target]:
            better += 1
        elif score == scores[target]:
            tied += 1
    return 1.0 + better, 1.0 + better + tied


def reference_metrics(ranks: list[float]) -> dict[str, float]:
    n = len(ranks)
    return {"mr": sum(ranks) / n, "mrr": sum(1 / r for r in ranks) / n,
            **{f"hits@{k}": sum(1 for r in ranks if r <= k) / n for k in (1, 3, 10)}}


def reference_categories(train: list[list[int]], num_relations: int) -> list[int]:
    tails_of: dict[tuple[int, int], set[int]] = defaultdict(set)
    heads_of: dict[tuple[int, int], set[int]] = defaultdict(set)
    for h, r, t in train:
        tails_of[(r, h)].add(t)
        heads_of[(r, t)].add(h)
    categories = []
    for r in range(num_relations):
        tails = [len(v) for (rr, _), v in tails_of.items() if rr == r]
        heads = [len(v) for (rr, _), v in heads_of.items() if rr == r]
        if not tails:
            categories.append(UNSEEN)
            continue
        tph, hpt = sum(tails) / len(tails), sum(heads) / len(heads)
        categories.append(CATEGORIES.index(("N" if hpt >= 1.5 else "1") + "-"
                                           + ("N" if tph >= 1.5 else "1")))
    return categories


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def setup() -> dict:
    g = torch.Generator().manual_seed(0)
    test = torch.stack([torch.randint(0, N, (40,), generator=g),
                        torch.randint(0, R, (40,), generator=g),
                        torch.randint(0, N, (40,), generator=g)], dim=1)
    train = torch.stack([torch.randint(0, N, (120,), generator=g),
                         torch.randint(0, R, (120,), generator=g),
                         torch.randint(0, N, (120,), generator=g)], dim=1)
    # the filter holds train and half of the test triples: some targets are known answers
    known_triples = reciprocal_triples(torch.cat([train, test[::2]]), R)
    known = AnswerIndex.build(known_triples, N, 2 * R)
    table = torch.randint(0, 4, (N, 2 * R, N), generator=g).to(torch.float32)  # many ties
    return {"test": test, "train": train, "known": known, "known_triples": known_triples,
            "table": table, "categories": relation_categories(train, R)}


def table_scorer(table: torch.Tensor):
    def score(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        assert torch.is_inference_mode_enabled()
        return table[heads, relations]
    return score


def reference_evaluation(setup: dict) -> dict:
    known_set: dict[tuple[int, int], set[int]] = defaultdict(set)
    for h, r, t in setup["known_triples"].tolist():
        known_set[(h, r)].add(t)
    table = setup["table"].tolist()
    ranks: dict[str, list[tuple[float, float]]] = {"tail": [], "head": []}
    for h, r, t in setup["test"].tolist():
        ranks["tail"].append(reference_rank(table[h][r], t, known_set[(h, r)]))
        ranks["head"].append(reference_rank(table[t][r + R], h, known_set[(t, r + R)]))
    return ranks


def assert_metrics_close(actual: dict[str, float], expected: dict[str, float]) -> None:
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


# -- acceptance ----------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk_elements", [None, 2 * N, 1])
def test_evaluator_equals_the_slow_reference_in_every_mode_and_direction(
        setup: dict, chunk_elements: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if chunk_elements is not None:   # comparison masks of 2 rows or of 1 row instead of all rows
        monkeypatch.setattr(ranking, "_CHUNK_ELEMENTS", chunk_elements)
    result = evaluate(table_scorer(setup["table"]), setup["test"], setup["known"], R,
                      batch_size=16, categories=setup["categories"])
    reference = reference_evaluation(setup)
    for direction in ("tail", "head"):
        optimistic = [o for o, _ in reference[direction]]
        pessimistic = [p for _, p in reference[direction]]
        realistic = [(o + p) / 2 for o, p in reference[direction]]
        expected = {"optimistic": optimistic, "pessimistic": pessimistic, "realistic": realistic}
        for mode, ranks in expected.items():
            assert result.ranks[mode][direction].tolist() == ranks, (mode, direction)
            assert_metrics_close(result.metrics[mode][direction], reference_metrics(ranks))
    assert any(o != p for o, p in reference["tail"]), "the test needs ties"
    answers = torch.bincount(setup["known"].answers(setup["test"][:, 0], setup["test"][:, 1])[0])
    assert int(answers.max()) >= 3, "the test needs several known answers per query"
    assert bool(setup["known"].contains(setup["test"]).any()), "and known targets"
    for mode, weight in (("optimistic", 0.0), ("pessimistic", 1.0), ("realistic", 0.5)):
        both = [o + weight * (p - o) for d in ("tail", "head") for o, p in reference[d]]
        assert_metrics_close(result.metrics[mode]["both"], reference_metrics(both))

    realistic = [(o + p) / 2 for d in ("tail", "head") for o, p in reference[d]]
    relations = setup["test"][:, 1].tolist() * 2
    by_relation: dict[int, list[float]] = defaultdict(list)
    for r, rank in zip(relations, realistic, strict=True):
        by_relation[r].append(rank)
    assert set(result.per_relation) == set(by_relation)
    for r, ranks in by_relation.items():
        assert_metrics_close(result.per_relation[r], reference_metrics(ranks))
        assert result.per_relation[r]["count"] == len(ranks)

    categories = reference_categories(setup["train"].tolist(), R)
    assert setup["categories"].tolist() == categories
    by_category: dict[str, list[float]] = defaultdict(list)
    for r, rank in zip(relations, realistic, strict=True):
        by_category[CATEGORIES[categories[r]]].append(rank)
    assert set(result.per_category) == set(by_category)
    for name, ranks in by_category.items():
        assert_metrics_close(result.per_category[name], reference_metrics(ranks))
    for direction in ("tail", "head"):
        by_category = defaultdict(list)
        for r, (o, p) in zip(setup["test"][:, 1].tolist(), reference[direction], strict=True):
            by_category[CATEGORIES[categories[r]]].append((o + p) / 2)
        for name, ranks in by_category.items():
            metrics = result.per_category_direction[direction][name]
            assert_metrics_close(metrics, reference_metrics(ranks))


def test_chunking_does_not_change_results(setup: dict) -> None:
    runs = [evaluate(table_scorer(setup["table"]), setup["test"], setup["known"], R,
                     batch_size=b, categories=setup["categories"]) for b in (1, 7, 10_000)]
    for other in runs[1:]:
        for mode in runs[0].ranks:
            for direction in ("tail", "head"):
                assert torch.equal(runs[0].ranks[mode][direction], other.ranks[mode][direction])
        assert runs[0].to_json() == other.to_json()


def test_perfect_scorer_has_mrr_one(setup: dict) -> None:
    known = AnswerIndex.build(reciprocal_triples(torch.cat([setup["train"], setup["test"]]), R),
                              N, 2 * R)

    def perfect(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        rows, cols = known.answers(heads, relations)
        scores = torch.zeros(len(heads), N)
        scores[rows, cols] = 1.0   # every true answer on top; the others are filtered
        return scores

    result = evaluate(perfect, setup["test"], known, R, batch_size=8)
    for mode in ("optimistic", "pessimistic", "realistic"):
        assert result.metrics[mode]["both"]["mrr"] == 1.0
        assert result.metrics[mode]["both"]["mr"] == 1.0


def test_constant_scorer_gets_the_middle_of_the_unfiltered_candidates(setup: dict) -> None:
    """All scores equal: optimistic 1, pessimistic N_c, realistic (N_c + 1) / 2, where N_c is the
    number of candidates left after filtering, the target included."""
    known: AnswerIndex = setup["known"]
    result = evaluate(lambda h, r: torch.zeros(len(h), N), setup["test"], known, R)
    heads, relations, tails = setup["test"].unbind(1)
    for direction, (q_heads, q_relations, targets) in {
            "tail": (heads, relations, tails), "head": (tails, relations + R, heads)}.items():
        rows, cols = known.answers(q_heads, q_relations)
        filtered_others = torch.bincount(rows[cols != targets[rows]], minlength=len(heads))
        remaining = (N - filtered_others).to(torch.float64)
        assert torch.equal(result.ranks["optimistic"][direction], torch.ones(len(heads)).double())
        assert torch.equal(result.ranks["pessimistic"][direction], remaining)
        assert torch.equal(result.ranks["realistic"][direction], (remaining + 1) / 2)


def test_random_unsorted_filter_and_optimistic_le_realistic_le_pessimistic() -> None:
    g = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 3, (50, 40), generator=g).float()
    scores[:, :5] = torch.randn(50, 5, generator=g)
    targets = torch.randint(0, 40, (50,), generator=g)
    rows = torch.randint(0, 50, (200,), generator=g)
    cols = torch.randint(0, 40, (200,), generator=g)
    ranks = filtered_ranks(scores, targets, rows, cols)   # unsorted, with repeated pairs
    known: dict[int, set[int]] = defaultdict(set)
    for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
        known[row].add(col)
    expected = [reference_rank(scores[i].tolist(), int(targets[i]), known[i]) for i in range(50)]
    assert ranks.optimistic.tolist() == [o for o, _ in expected]
    assert ranks.pessimistic.tolist() == [p for _, p in expected]
    assert bool((ranks.optimistic <= ranks.realistic).all())
    assert bool((ranks.realistic <= ranks.pessimistic).all())
    assert bool((ranks.optimistic >= 1).all()) and bool((ranks.pessimistic <= 40).all())
    assert ranks.realistic.dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_dtypes_and_non_contiguous_scores_give_the_same_ranks(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(2)
    scores = torch.randint(0, 5, (30, 20), generator=g).float()
    targets = torch.randint(0, 20, (30,), generator=g)
    rows = torch.randint(0, 30, (60,), generator=g)
    cols = torch.randint(0, 20, (60,), generator=g)
    expected = filtered_ranks(scores, targets, rows, cols)
    for variant in (scores.to(dtype), scores.T.contiguous().T):
        assert not variant.is_contiguous() or variant.dtype == dtype
        for got, want in zip(filtered_ranks(variant, targets, rows, cols), expected, strict=True):
            assert torch.equal(got, want)


def test_filtered_ranks_by_hand() -> None:
    scores = torch.tensor([[3.0, 1.0, 3.0, 2.0, 3.0, 4.0],
                           [-math.inf, 0.0, -math.inf, -math.inf, 1.0, 0.0]])
    # row 0: entity 2 (tied) and 5 (better) are known; the target 0 is listed too, never filtered
    # row 1: the target's score is -inf; entity 3 (tied) is known, entity 2 (tied) repeats
    rows, cols = torch.tensor([0, 0, 0, 1, 1, 1]), torch.tensor([2, 5, 0, 3, 2, 2])
    ranks = filtered_ranks(scores, torch.tensor([0, 0]), rows, cols)
    assert ranks.optimistic.tolist() == [1.0, 4.0]          # row 1: entities 1, 4, 5 are better
    assert ranks.pessimistic.tolist() == [2.0, 4.0]         # row 0: entity 4 ties
    assert ranks.realistic.tolist() == [1.5, 4.0]


def test_hits_use_the_given_rank_so_a_realistic_half_rank_counts_as_a_miss() -> None:
    metrics = rank_metrics(torch.tensor([1.0, 3.5, 3.0, 10.5], dtype=torch.float64))
    assert metrics["hits@1"] == 0.25 and metrics["hits@3"] == 0.5 and metrics["hits@10"] == 0.75
    assert metrics["mr"] == pytest.approx(18 / 4)
    assert metrics["mrr"] == pytest.approx((1 + 1 / 3.5 + 1 / 3 + 1 / 10.5) / 4)


def test_categories_on_a_hand_built_graph() -> None:
    train = torch.tensor([
        [0, 0, 1], [1, 0, 2], [2, 0, 3],              # r0 chain: tph 1, hpt 1 -> 1-1
        [0, 1, 1], [0, 1, 2], [0, 1, 3], [4, 1, 5],   # r1: tph (3+1)/2 = 2, hpt 1 -> 1-N
        [1, 2, 0], [2, 2, 0], [3, 2, 0], [1, 2, 0],   # r2: tph 1, hpt 3 (duplicate once) -> N-1
        [0, 3, 1], [0, 3, 2], [1, 3, 1], [1, 3, 2],   # r3: tph 2, hpt 2 -> N-N
        [5, 5, 4]])                                    # r5 1-1; r4 has no triples
    tph, hpt = relation_cardinality(train, 6)
    assert tph[:4].tolist() == [1.0, 2.0, 1.0, 2.0] and hpt[:4].tolist() == [1.0, 1.0, 3.0, 2.0]
    assert relation_categories(train, 6).tolist() == [0, 1, 2, 3, UNSEEN, 0]
    assert [CATEGORIES[c] for c in relation_categories(train, 6)[:4]] == ["1-1", "1-N", "N-1",
                                                                          "N-N"]
    with pytest.raises(ValueError, match="reciprocals"):
        relation_categories(train, 4)


def test_nan_scores_raise_naming_the_row_and_the_triple(setup: dict) -> None:
    scores = torch.zeros(4, N)
    scores[2, 5] = math.nan
    with pytest.raises(NaNScoreError, match="score row 2 contains NaN"):
        no_filter = torch.tensor([], dtype=torch.int64)
        filtered_ranks(scores, torch.zeros(4, dtype=torch.int64), no_filter, no_filter)
    inf_row = torch.zeros(1, N)
    inf_row[0, :2] = torch.tensor([math.inf, -math.inf])   # sum is NaN, scores are not
    ranks = filtered_ranks(inf_row, torch.tensor([3]), torch.tensor([0]), torch.tensor([1]))
    assert ranks.optimistic.tolist() == [2.0] and ranks.pessimistic.tolist() == [12.0]

    def nan_on_head_queries(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        scores = torch.zeros(len(heads), N)
        scores[relations >= R] = math.nan
        return scores
    with pytest.raises(ValueError, match=r"NaN in the scores of triple 0, head query \(entity "):
        evaluate(nan_on_head_queries, setup["test"], setup["known"], R, batch_size=7)


def test_shape_errors_are_clear(setup: dict) -> None:
    with pytest.raises(ValueError, match=r"scores must be \[B, N\]"):
        filtered_ranks(torch.zeros(N), torch.tensor([0]), torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="targets must be"):
        filtered_ranks(torch.zeros(2, N), torch.tensor([0]), torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="filter_cols must lie in"):
        filtered_ranks(torch.zeros(1, N), torch.tensor([0]), torch.tensor([0]), torch.tensor([N]))
    with pytest.raises(ValueError, match=r"shape \[B, N\] = \[5, 13\].*got \(5, 12\)"):
        evaluate(lambda h, r: torch.zeros(len(h), N - 1), setup["test"], setup["known"], R,
                 batch_size=5)
    with pytest.raises(ValueError, match="reciprocal"):
        evaluate(table_scorer(setup["table"]), setup["test"],
                 AnswerIndex.build(setup["train"], N, R), R)
    with pytest.raises(ValueError, match="no reciprocals"):
        evaluate(table_scorer(setup["table"]), setup["test"] + torch.tensor([0, R, 0]),
                 setup["known"], R)


def test_to_json_has_the_headline_at_top_level(setup: dict) -> None:
    result = evaluate(table_scorer(setup["table"]), setup["test"], setup["known"], R,
                      categories=setup["categories"], progress=False)
    report = json.loads(json.dumps(result.to_json(relation_names=["a", "b", "c"])))
    assert report["tie_handling"] == "realistic"
    for key in ("mrr", "mr", "hits@1", "hits@3", "hits@10"):
        assert report[key] == result.metrics["realistic"]["both"][key]
        assert report["optimistic"][key] == result.metrics["optimistic"]["both"][key]
        assert report["pessimistic"]["head"][key] == result.metrics["pessimistic"]["head"][key]
    assert report["optimistic"]["mrr"] >= report["mrr"] >= report["pessimistic"]["mrr"]
    assert set(report["per_relation"]) <= {"a", "b", "c"}
    assert set(report["per_category"]) <= set(CATEGORIES)
    assert report["num_triples"] == len(setup["test"])


def test_build_filter_holds_every_split_in_both_directions() -> None:
    splits = {"train": torch.tensor([[0, 1, 1], [1, 0, 2]]), "valid": torch.tensor([[3, 0, 0]]),
              "test": torch.tensor([[1, 1, 0]])}
    kg = MultimodalKG.from_data(MMKGData("tiny", ("a", "b", "c", "d"), ("x", "y"), splits, {}))
    known = build_filter(kg)
    assert known.num_relations == 4 and known.num_entities == 4
    everything = reciprocal_triples(torch.cat(list(splits.values())), 2)
    assert bool(known.contains(everything).all()) and known.offsets.diff().sum() == 8
