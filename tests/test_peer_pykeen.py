"""bench/peer_pykeen.py: PyKEEN sees exactly our graph (same entities, relations, triples and
reciprocal relations) and our evaluator reads PyKEEN's model correctly. The id conversion is
tested without PyKEEN (CI does not install the ``bench`` extra); the rest skips without it."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from pipeline_helpers import load_bench

from roam_graph.data.errors import DataError
from roam_graph.sampling import OneToNSampler


@pytest.fixture(scope="module")
def peer():  # noqa: ANN201 (a module loaded from its file)
    return load_bench("peer_pykeen")


# -- without PyKEEN --------------------------------------------------------------------------
def test_label_maps_give_every_name_its_id_in_our_graph(peer, kg) -> None:
    entity_to_id, relation_to_id = peer.label_maps(kg.entity_names, kg.relation_names)
    assert len(entity_to_id) == kg.num_entities and len(relation_to_id) == kg.num_relations
    assert all(entity_to_id[name] == kg.entity_id(name) for name in kg.entity_names)
    assert all(relation_to_id[name] == kg.relation_id(name) for name in kg.relation_names)


def test_label_maps_reject_a_duplicate_name_by_name(peer) -> None:
    with pytest.raises(DataError, match="entity name 'b' occurs twice"):
        peer.label_maps(["a", "b", "b"], ["r"])


def test_reciprocal_relations_map_to_pykeens_odd_inverse_ids(peer) -> None:
    num_relations = 5
    ours = torch.arange(2 * num_relations)
    theirs = peer.pykeen_relation_ids(ours, num_relations)
    assert theirs[:num_relations].tolist() == [0, 2, 4, 6, 8]        # r -> 2r
    assert theirs[num_relations:].tolist() == [1, 3, 5, 7, 9]        # r + R -> 2r + 1
    assert sorted(theirs.tolist()) == list(range(2 * num_relations))  # a bijection


def test_relation_ids_outside_the_reciprocal_range_are_refused(peer) -> None:
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        peer.pykeen_relation_ids(torch.tensor([0, 6]), 3)


def test_missing_pykeen_is_one_clear_error_naming_the_extra(peer, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pykeen", None)   # makes `import pykeen` fail
    with pytest.raises(DataError, match=r"pip install -e '\.\[bench\]'"):
        peer.main(["--graph", "synthetic-tiny"])


@pytest.mark.parametrize(("flag", "value"), [("--dim", "0"), ("--batch-size", "1"),
                                             ("--epochs", "0")])
def test_impossible_sizes_are_refused_naming_the_flag(peer, flag, value) -> None:
    with pytest.raises(DataError, match=flag):
        peer.parse_args([flag, value])


# -- with PyKEEN (pip install -e '.[bench]') ----------------------------------------------------
def test_triples_factory_holds_our_entities_relations_and_triples(peer, kg) -> None:
    pytest.importorskip("pykeen")
    factory = peer.to_triples_factory(kg)
    assert factory.num_entities == kg.num_entities
    assert factory.real_num_relations == kg.num_relations
    assert factory.num_relations == 2 * kg.num_relations            # with inverse relations
    assert factory.entity_to_id == {name: i for i, name in enumerate(kg.entity_names)}
    assert factory.relation_to_id == {name: i for i, name in enumerate(kg.relation_names)}
    assert torch.equal(factory.mapped_triples, kg.triples("train").to(torch.int64))
    forward = factory.relation_inverter.map(factory.mapped_triples)[:, 1]
    inverse = factory.relation_inverter.map(factory.mapped_triples, invert=True)[:, 1]
    relations = kg.triples("train")[:, 1].to(torch.int64)
    assert torch.equal(forward, peer.pykeen_relation_ids(relations, kg.num_relations))
    assert torch.equal(inverse, peer.pykeen_relation_ids(relations + kg.num_relations,
                                                         kg.num_relations))


def test_pykeens_lcwa_trains_on_our_one_to_n_queries(peer, kg) -> None:
    pytest.importorskip("pykeen")
    from pykeen.triples.instances import LCWAInstances
    instances = LCWAInstances.from_triples_factory(peer.to_triples_factory(kg), target=2)
    sampler = OneToNSampler.from_kg(kg, 64)
    assert len(instances) == sampler.answers.num_queries


def test_score_function_gives_pykeens_tail_and_head_predictions(peer, kg) -> None:
    pytest.importorskip("pykeen")
    from pykeen.models import TuckER
    model = TuckER(triples_factory=peer.to_triples_factory(kg), embedding_dim=8,
                   random_seed=0).eval()
    valid = kg.triples("valid")[:16].to(torch.int64)
    score = peer.pykeen_score_fn(model, kg.num_relations)
    with torch.inference_mode():
        tails = score(valid[:, 0], valid[:, 1])
        heads = score(valid[:, 2], valid[:, 1] + kg.num_relations)
        assert torch.allclose(tails, model.predict_t(valid[:, :2]))
        assert torch.allclose(heads, model.predict_h(valid[:, 1:]))


def test_run_writes_speed_curves_and_both_evaluators_agree(peer, data_dir, tmp_path) -> None:
    pytest.importorskip("pykeen")
    out = tmp_path / "peer"
    assert peer.main(["--graph", "synthetic-tiny", "--dim", "8", "--batch-size", "128",
                      "--epochs", "2", "--eval-every", "1", "--out", str(out)]) == 0
    result = json.loads((out / "peer_pykeen.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["peer_pykeen.json", "peer_pykeen.md"]
    for key in ("ours", "pykeen"):
        assert [row["epoch"] for row in result[key]["history"]] == [1, 2]
        assert all(row["seconds"] > 0 and 0 < row["valid_mrr"] <= 1
                   for row in result[key]["history"])
        assert result[key]["history"][-1]["valid_mrr"] == result[key]["valid"]["mrr"]
    assert result["speedup"] == pytest.approx(
        result["pykeen"]["seconds_per_epoch"] / result["ours"]["seconds_per_epoch"])
    # the same model, filter and tie handling: PyKEEN's evaluator agrees with ours
    assert result["pykeen"]["valid_pykeen_evaluator"]["mrr"] == pytest.approx(
        result["pykeen"]["valid"]["mrr"], rel=1e-4)
    assert f"{result['speedup']:.1f}x" in (out / "peer_pykeen.md").read_text()
