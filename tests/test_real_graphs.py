"""The five benchmarks load from the real published files with exactly the published sizes
(../shared/datasets/README.md) and known triples resolve by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from roam_graph.data.stats import graph_statistics
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.graph.prepare import PrepareOptions, prepare_graph

SIZES = {  # entities, relations, train, valid, test (shared/datasets/README.md)
    "db15k": (12_842, 279, 79_222, 9_904, 9_902),
    "mkg-w": (15_000, 169, 34_196, 4_276, 4_274),
    "mkg-y": (15_000, 28, 21_310, 2_665, 2_663),
    "kvc16k": (16_015, 4, 180_190, 22_523, 22_525),
    "fb15k237img": (14_541, 237, 272_115, 17_535, 20_466),
}

KNOWN_TRIPLES = {  # (split, head, relation, tail) by name, read off the published files
    "db15k": ("train", "<http://dbpedia.org/resource/John_Mahoney>",
              "<http://dbpedia.org/ontology/birthPlace>", "<http://dbpedia.org/resource/England>"),
    "mkg-w": ("test", "http://www.wikidata.org/entity/Q96611",
              "http://www.wikidata.org/entity/P937", "http://www.wikidata.org/entity/Q1799"),
    "mkg-y": ("train", "Gilles_Mbang_Ondo", "wasBornIn", "Libreville"),
    "kvc16k": ("train", "田震", "3", "参演电影"),
    "fb15k237img": ("train", "/m/027rn", "/location/country/form_of_government", "/m/06cx9"),
}


@pytest.fixture(scope="module")
def graphs(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, MultimodalKG]:
    data_dir = tmp_path_factory.mktemp("data")
    return {name: prepare_graph(PrepareOptions(name, source=shared_datasets / name,
                                               data_dir=data_dir), log=lambda _: None).kg
            for name in SIZES}


@pytest.mark.parametrize("name", list(SIZES))
def test_sizes_are_the_published_ones(graphs: dict[str, MultimodalKG], name: str) -> None:
    kg = graphs[name]
    sizes = (kg.num_entities, kg.num_relations,
             *(len(kg.triples(s)) for s in ("train", "valid", "test")))
    assert sizes == SIZES[name]


@pytest.mark.parametrize("name", list(KNOWN_TRIPLES))
def test_known_triple_is_found_by_name(graphs: dict[str, MultimodalKG], name: str) -> None:
    kg = graphs[name]
    split, head, relation, tail = KNOWN_TRIPLES[name]
    wanted = torch.tensor([kg.entity_id(head), kg.relation_id(relation), kg.entity_id(tail)])
    assert bool((kg.triples(split) == wanted).all(dim=1).any())


def test_db15k_quirk_valid_triples_leaking_from_train_is_reported(
        graphs: dict[str, MultimodalKG]) -> None:
    stats = graph_statistics(graphs["db15k"].to_data())
    assert stats.also_in_train == {"valid": 8_719, "test": 0}


def test_kvc16k_quirks_are_counted_not_fatal(graphs: dict[str, MultimodalKG]) -> None:
    stats = graph_statistics(graphs["kvc16k"].to_data())
    assert stats.duplicates["train"] == 171
    assert stats.also_in_train == {"valid": 30, "test": 48}


def test_graphs_with_names_carry_entity_texts(graphs: dict[str, MultimodalKG]) -> None:
    fb = graphs["fb15k237img"]
    assert fb.entity_texts is not None
    assert fb.entity_texts[fb.entity_id("/m/016ywr")].startswith("Jeremy Irons")
    assert graphs["mkg-w"].entity_texts is None  # only Wikidata ids: no text


@pytest.mark.text
def test_fb15k237_text_features_cover_every_entity(shared_datasets: Path, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    prepared = prepare_graph(PrepareOptions("fb15k237img",
                                            source=shared_datasets / "fb15k237img",
                                            data_dir=tmp_path, text_encoder="minilm"),
                             log=lambda _: None)
    text = prepared.kg.modalities["text"]
    assert text.values.shape == (14_541, 384)
    assert bool(text.present.all())
    norms = text.values.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)
