"""Preparation and cache: build once, load fast, rebuild only when inputs change, and say
clearly what is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from roam_graph.data.errors import DataError
from roam_graph.graph.prepare import PrepareOptions, load_prepared, prepare_graph

REPO = Path(__file__).resolve().parents[1]


def tsv_graph(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.tsv").write_text("a\tr\tb\nb\tr\tc\nc\ts\ta\n")
    (folder / "valid.tsv").write_text("a\ts\tc\n")
    (folder / "test.tsv").write_text("b\ts\ta\n")
    (folder / "entities.txt").write_text("a\nb\nc\n")
    return folder


def test_second_prepare_is_a_cache_hit(tmp_path: Path, data_dir: Path) -> None:
    options = PrepareOptions("mine", source=tsv_graph(tmp_path / "src"))
    first = prepare_graph(options, log=lambda _: None)
    second = prepare_graph(options, log=lambda _: None)
    assert first.rebuilt and not second.rebuilt
    assert torch.equal(first.kg.triples("train"), second.kg.triples("train"))
    assert second.kg.entity_names == ("a", "b", "c")


def test_changed_input_triggers_a_rebuild(tmp_path: Path, data_dir: Path) -> None:
    source = tsv_graph(tmp_path / "src")
    prepare_graph(PrepareOptions("mine", source=source), log=lambda _: None)
    (source / "test.tsv").write_text("b\ts\ta\nc\tr\tb\n")
    again = prepare_graph(PrepareOptions("mine", source=source), log=lambda _: None)
    assert again.rebuilt and len(again.kg.triples("test")) == 2


def test_generic_graph_features_load_in_entity_order(tmp_path: Path, data_dir: Path) -> None:
    source = tsv_graph(tmp_path / "src")
    import numpy as np
    np.save(source / "image.npy", np.array([[1, 1], [0, 0], [2, 3]], dtype=np.float32))
    kg = prepare_graph(PrepareOptions("mine", source=source), log=lambda _: None).kg
    image = kg.modalities["image"]
    assert image.present.tolist() == [True, False, True]
    assert image.values[2].tolist() == [2.0, 3.0]


def test_interrupted_write_is_not_taken_as_a_cache(tmp_path: Path, data_dir: Path) -> None:
    source = tsv_graph(tmp_path / "src")
    prepared = prepare_graph(PrepareOptions("mine", source=source), log=lambda _: None)
    (prepared.folder / "meta.json").unlink()  # what a crash between graph.bin and meta leaves
    again = prepare_graph(PrepareOptions("mine", source=source), log=lambda _: None)
    assert again.rebuilt
    assert not list(prepared.folder.glob("*.part"))


def test_missing_files_are_named_with_where_to_get_them(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(DataError) as error:
        prepare_graph(PrepareOptions("mkg-y", source=tmp_path / "empty"), log=lambda _: None)
    message = str(error.value)
    assert "train.txt" in message and "entity2id.txt" in message
    assert "github.com/zjukg/MoMoK" in message and "--download" in message


def test_unknown_graph_without_source_lists_registered_graphs(data_dir: Path) -> None:
    with pytest.raises(DataError, match="unknown graph 'nope'; registered graphs: fb15k237img"):
        prepare_graph(PrepareOptions("nope"), log=lambda _: None)


def test_unknown_text_encoder_is_refused(data_dir: Path) -> None:
    with pytest.raises(DataError, match="unknown text encoder 'bert'"):
        prepare_graph(PrepareOptions("synthetic-tiny", text_encoder="bert"), log=lambda _: None)


def test_synthetic_graph_needs_no_files(data_dir: Path) -> None:
    prepared = prepare_graph(PrepareOptions("synthetic-tiny"), log=lambda _: None)
    assert prepared.kg.num_entities > 0
    assert set(prepared.kg.modality_names) == {"image", "text"}
    reloaded = load_prepared(prepared.folder)
    assert reloaded.num_entities == prepared.kg.num_entities
    for name, modality in reloaded.modalities.items():
        assert modality.present.dtype == torch.bool
        assert torch.equal(modality.present, prepared.kg.modalities[name].present)


def run_prepare(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ROAM_DATA_DIR=str(data_dir))
    return subprocess.run([sys.executable, str(REPO / "pipelines" / "prepare.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_reports_stats_of_the_synthetic_graph(data_dir: Path) -> None:
    result = run_prepare("--graph", "synthetic-tiny", "--stats", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "entities" in result.stdout and "train triples also in train" not in result.stdout


def test_cli_bad_input_exits_2_with_one_clear_line(tmp_path: Path, data_dir: Path) -> None:
    source = tsv_graph(tmp_path / "src")
    (source / "valid.tsv").write_text("a\tr\tb\nbroken line\n")
    result = run_prepare("--graph", "mine", "--source", str(source), data_dir=data_dir)
    assert result.returncode == 2
    assert "valid.tsv:2: expected 'HEAD<TAB>REL<TAB>TAIL'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_changed_synthetic_preset_rebuilds_the_cache(data_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from roam_graph.data import synthetic
    prepare_graph(PrepareOptions("synthetic-tiny"), log=lambda _: None)
    changed = dict(synthetic.SYNTHETIC_PRESETS)
    changed["tiny"] = replace(changed["tiny"], corrupt_fraction=0.05)
    monkeypatch.setattr("roam_graph.graph.prepare.SYNTHETIC_PRESETS", changed)
    assert prepare_graph(PrepareOptions("synthetic-tiny"), log=lambda _: None).rebuilt
