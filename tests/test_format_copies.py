"""Every documented format trains: a registered benchmark rewritten in another layout, prepared
and trained under a name of its own with ``--format``, is the same graph (names, ids, triples in
file order) as the registered one. MKG-Y (MoMoK names) as OpenKE ids; DB15K (OpenKE ids) as name
triples without id files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from roam_graph.data.formats import Structure, read_structure
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.graph.prepare import PrepareOptions, load_prepared, prepare_graph

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "valid", "test")
QUICK = ["--model", "tucker", "--dim", "8", "--epochs", "1", "--batch-size", "4096",
         "--device", "cpu", "--quiet"]


def write_openke(structure: Structure, folder: Path) -> Path:
    entities, relations, splits = structure
    folder.mkdir(parents=True)
    for name, names in (("entity2id.txt", entities), ("relation2id.txt", relations)):
        (folder / name).write_text(f"{len(names)}\n" + "".join(
            f"{n}\t{i}\n" for i, n in enumerate(names)), encoding="utf-8")
    for split in SPLITS:
        rows = splits[split].tolist()
        (folder / f"{split}2id.txt").write_text(f"{len(rows)}\n" + "".join(
            f"{h} {t} {r}\n" for h, r, t in rows), encoding="utf-8")
    return folder


def write_names(structure: Structure, folder: Path, name_lists: bool) -> Path:
    """``HEAD REL TAIL .`` and ``HEAD<TAB>REL<TAB>TAIL`` lines alternating: both layouts."""
    entities, relations, splits = structure
    folder.mkdir(parents=True)
    for split in SPLITS:
        lines = [f"{entities[h]} {relations[r]} {entities[t]} .\n" if i % 2 else
                 f"{entities[h]}\t{relations[r]}\t{entities[t]}\n"
                 for i, (h, r, t) in enumerate(splits[split].tolist())]
        (folder / f"{split}.txt").write_text("".join(lines), encoding="utf-8")
    if name_lists:
        (folder / "entities.txt").write_text("".join(f"{n}\n" for n in entities), "utf-8")
        (folder / "relations.txt").write_text("".join(f"{n}\n" for n in relations), "utf-8")
    return folder


def name_triples(structure: Structure, split: str) -> list[tuple[str, str, str]]:
    entities, relations, splits = structure
    return [(entities[h], relations[r], entities[t]) for h, r, t in splits[split].tolist()]


def assert_same_graph(copy: MultimodalKG, registered: MultimodalKG) -> None:
    assert copy.entity_names == registered.entity_names
    assert copy.relation_names == registered.relation_names
    for split in SPLITS:
        assert torch.equal(copy.triples(split), registered.triples(split))


def train_copy(graph: str, fmt: str, source: Path, tmp_path: Path) -> MultimodalKG:
    """``run.py --graph GRAPH --format FMT --source DIR`` for one quick epoch; the graph it
    prepared, read back from its cache."""
    data_dir = tmp_path / "data"
    env = dict(os.environ, ROAM_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(REPO / "pipelines" / "run.py"), "--graph", graph,
                             "--format", fmt, "--source", str(source), *QUICK, "--out",
                             str(tmp_path / "run")], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").is_file()
    return load_prepared(data_dir / "prepared" / graph)


def registered(name: str, shared: Path, tmp_path: Path) -> MultimodalKG:
    return prepare_graph(PrepareOptions(name, source=shared / name, data_dir=tmp_path / "reg"),
                         log=lambda _: None).kg


@pytest.mark.slow
def test_mkg_y_in_openke_layout_trains_and_is_the_registered_graph(shared_datasets: Path,
                                                                   tmp_path: Path) -> None:
    source = write_openke(read_structure(shared_datasets / "mkg-y", "momok"), tmp_path / "src")
    copy = train_copy("mkgy-openke", "openke", source, tmp_path)
    assert_same_graph(copy, registered("mkg-y", shared_datasets, tmp_path))


@pytest.mark.slow
def test_db15k_as_name_triples_trains_and_is_the_registered_graph(shared_datasets: Path,
                                                                  tmp_path: Path) -> None:
    structure = read_structure(shared_datasets / "db15k", "openke")
    source = write_names(structure, tmp_path / "src", name_lists=True)
    copy = train_copy("db15k-names", "names", source, tmp_path)
    assert_same_graph(copy, registered("db15k", shared_datasets, tmp_path))


def test_name_triples_without_name_lists_hold_the_same_triples(shared_datasets: Path,
                                                               tmp_path: Path) -> None:
    """Without entities.txt, ids follow first appearance, but every triple is the same."""
    structure = read_structure(shared_datasets / "mkg-y", "momok")
    again = read_structure(write_names(structure, tmp_path / "src", name_lists=False), "names")
    assert all(name_triples(again, s) == name_triples(structure, s) for s in SPLITS)


def test_a_format_contradicting_a_registered_graph_is_refused(shared_datasets: Path,
                                                              tmp_path: Path) -> None:
    env = dict(os.environ, ROAM_DATA_DIR=str(tmp_path / "data"), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(REPO / "pipelines" / "prepare.py"), "--graph",
                             "mkg-y", "--format", "openke", "--source",
                             str(shared_datasets / "mkg-y")], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--format: format 'openke' contradicts graph 'mkg-y', registered with format " \
           "'momok'" in result.stderr
