"""The graph object: a DGL heterograph with one edge type per relation, split membership, names,
modality features with presence masks, and flat/reciprocal views in file order."""

from __future__ import annotations

import pytest
import torch

from roam_graph.data import MMKGData, Modality
from roam_graph.data.errors import DataError
from roam_graph.graph.mmkg import MultimodalKG


@pytest.fixture()
def small_data() -> MMKGData:
    splits = {
        "train": torch.tensor([[0, 1, 1], [1, 0, 2], [2, 1, 3], [0, 1, 1]]),
        "valid": torch.tensor([[3, 0, 0]]),
        "test": torch.tensor([[1, 1, 0], [2, 0, 0]]),
    }
    image = Modality(torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, 4.0], [5.0, 6.0]]),
                     torch.tensor([True, False, True, True]))
    # relation names are deliberately not in sorted order: DGL sorts edge types by name
    return MMKGData("small", ("a", "b", "c", "d"), ("zeta", "alpha"), splits, {"image": image})


def test_heterograph_has_one_canonical_edge_type_per_relation(small_data: MMKGData) -> None:
    kg = MultimodalKG.from_data(small_data)
    assert kg.graph.ntypes == ["entity"]
    assert sorted(kg.graph.canonical_etypes) == [("entity", "alpha", "entity"),
                                                 ("entity", "zeta", "entity")]
    assert kg.graph.num_edges("alpha") == 4 and kg.graph.num_edges("zeta") == 3


def test_every_edge_knows_its_split(small_data: MMKGData) -> None:
    kg = MultimodalKG.from_data(small_data)
    splits = torch.cat([kg.graph.edges[e].data["split"] for e in kg.graph.canonical_etypes])
    assert torch.bincount(splits.long()).tolist() == [4, 1, 2]


def test_flat_view_returns_each_split_in_file_order(small_data: MMKGData) -> None:
    kg = MultimodalKG.from_data(small_data)
    for split, triples in small_data.splits.items():
        assert torch.equal(kg.triples(split), triples)
    assert torch.equal(kg.triples(["valid", "test"]),
                       torch.cat([small_data.splits["valid"], small_data.splits["test"]]))


def test_reciprocal_view_appends_reversed_triples_with_shifted_relations(
        small_data: MMKGData) -> None:
    kg = MultimodalKG.from_data(small_data)
    both = kg.triples("test", reciprocal=True)
    assert both.tolist() == [[1, 1, 0], [2, 0, 0], [0, 3, 1], [0, 2, 2]]
    assert kg.relation_name(3) == "alpha^-1" and kg.relation_id("alpha^-1") == 3


def test_names_and_ids_map_both_ways(small_data: MMKGData) -> None:
    kg = MultimodalKG.from_data(small_data)
    assert kg.entity_id("c") == 2 and kg.entity_names[2] == "c"
    assert kg.relation_id("alpha") == 1
    with pytest.raises(DataError, match="has no entity 'nobody'"):
        kg.entity_id("nobody")
    with pytest.raises(DataError, match="has no relation 'nothing'"):
        kg.relation_id("nothing")


def test_modalities_are_node_features_with_presence_masks(small_data: MMKGData) -> None:
    kg = MultimodalKG.from_data(small_data)
    assert kg.modality_names == ("image",)
    image = kg.modalities["image"]
    assert image.present.tolist() == [True, False, True, True]
    assert torch.equal(kg.graph.ndata["image"], small_data.modalities["image"].values)


def test_homogeneous_view_carries_edge_types(small_data: MMKGData) -> None:
    kg = MultimodalKG.from_data(small_data)
    homogeneous = kg.homogeneous
    assert homogeneous.num_edges() == 7
    assert "_TYPE" in homogeneous.edata


def test_unknown_split_is_refused(small_data: MMKGData) -> None:
    kg = MultimodalKG.from_data(small_data)
    with pytest.raises(DataError, match="unknown split 'dev'"):
        kg.triples("dev")


def test_out_of_range_ids_are_refused(small_data: MMKGData) -> None:
    splits = dict(small_data.splits, test=torch.tensor([[1, 7, 0]]))
    with pytest.raises(DataError, match="split 'test' row 1 has relation id 7, outside 0..1"):
        MMKGData("bad", small_data.entity_names, small_data.relation_names, splits)


def test_empty_split_is_refused(small_data: MMKGData) -> None:
    splits = dict(small_data.splits, valid=torch.zeros((0, 3), dtype=torch.int64))
    with pytest.raises(DataError, match="split 'valid' is empty"):
        MMKGData("bad", small_data.entity_names, small_data.relation_names, splits)


def test_feature_rows_must_match_entities(small_data: MMKGData) -> None:
    short = Modality(torch.zeros(3, 2), torch.ones(3, dtype=torch.bool))
    with pytest.raises(DataError, match="image features have 3 rows but the graph has 4"):
        MMKGData("bad", small_data.entity_names, small_data.relation_names,
                 small_data.splits, {"image": short})


def test_nan_features_are_refused(small_data: MMKGData) -> None:
    values = torch.ones(4, 2)
    values[2, 1] = float("nan")
    with pytest.raises(DataError, match="text features of entity 2 contain NaN or inf"):
        MMKGData("bad", small_data.entity_names, small_data.relation_names, small_data.splits,
                 {"text": Modality(values, torch.ones(4, dtype=torch.bool))})


def test_a_graph_with_a_single_relation_builds() -> None:
    splits = {"train": torch.tensor([[0, 0, 1], [1, 0, 2]]), "valid": torch.tensor([[2, 0, 0]]),
              "test": torch.tensor([[0, 0, 2]])}
    kg = MultimodalKG.from_data(MMKGData("one", ("a", "b", "c"), ("only",), splits))
    assert torch.equal(kg.triples("train"), splits["train"])
    assert kg.graph.canonical_etypes == [("entity", "only", "entity")]
