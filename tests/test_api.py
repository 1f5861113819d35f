"""The Python API (roam_graph.api): train, load a run, predict and score by name, export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import roam_graph.api as roam
from roam_graph.data.errors import DataError

REPO = Path(__file__).resolve().parents[1]
TINY = {"epochs": 2, "dim": 16, "num_groups": 2, "eval_every": 1, "batch_size": 256}
QUERIES = [("e00042", "r03"), ("e00001", "r01^-1"), ("e00002", "r05")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, roam.TrainedRun]:
    """A ROAM run and a Tucker run on the tiny synthetic graph (trained once per module)."""
    root = tmp_path_factory.mktemp("api")
    return {model: roam.train(graph="synthetic-tiny", model=model, out=root / model,
                              data_dir=root / "data", **TINY)
            for model in ("roam", "tucker")}


def test_predict_tails_ranks_the_top_k_by_score_and_marks_known_triples(runs) -> None:
    run = runs["roam"]
    table = run.predict_tails(QUERIES, top_k=10)
    assert len(table) == 30 and list(table["rank"][:10]) == list(range(1, 11))
    for _, rows in table.groupby("query"):
        assert rows["score"].is_monotonic_decreasing and (rows["target"] == "tail").all()
    kg = run.kg
    train = {tuple(t) for t in kg.triples("train").tolist()}
    train |= {(t, r + kg.num_relations, h) for h, r, t in train}
    for row in table.itertuples():
        triple = (kg.entity_id(row.head), kg.relation_id(row.relation), kg.entity_id(row.tail))
        assert (row.known == "train") == (triple in train)
    assert {"group", "weight_structure", "weight_image", "weight_text"} <= set(table.columns)
    weights = table[["weight_structure", "weight_image", "weight_text"]].sum(axis=1)
    assert np.allclose(weights, 1.0, atol=1e-5)


def test_scores_do_not_depend_on_batching_and_agree_with_score_triples(runs) -> None:
    run = runs["roam"]
    together = run.predict_tails(QUERIES, top_k=5)
    alone = pd.concat([run.predict_tails([q], top_k=5) for q in QUERIES], ignore_index=True)
    assert (together["tail"] == alone["tail"]).all()
    assert np.allclose(together["score"], alone["score"], atol=1e-5)
    scored = run.score_triples(together[["head", "relation", "tail"]])
    assert np.allclose(scored["score"], together["score"], atol=1e-5)
    assert (scored["group"] == together["group"]).all()


def test_predict_heads_is_tail_prediction_with_the_reciprocal_relation(runs) -> None:
    run = runs["tucker"]
    heads = run.predict_heads([("r03", "e00042")], top_k=5)
    reversed_ = run.predict_tails([("e00042", "r03^-1")], top_k=5)
    assert (heads["target"] == "head").all() and (heads["tail"] == "e00042").all()
    assert list(heads["head"]) == list(reversed_["tail"])
    assert np.allclose(heads["score"], reversed_["score"])
    assert "group" not in heads.columns  # Tucker does not route


def test_unknown_names_are_reported_together_or_skipped(runs) -> None:
    run = runs["roam"]
    bad = [("nobody", "r03"), ("e00001", "rX"), ("e00002", "r05")]
    with pytest.raises(DataError) as error:
        run.predict_tails(bad)
    message = str(error.value)
    assert "2 row(s) with unknown names" in message
    assert "query 0: unknown head entity 'nobody'" in message
    assert "query 1: unknown relation 'rX'" in message
    table = run.predict_tails(bad, top_k=2, skip_unknown=True)
    assert set(table["query"]) == {2} and len(table.attrs["skipped"]) == 2
    with pytest.raises(DataError, match="no row is left to predict"):
        run.predict_tails(bad[:2], skip_unknown=True)


def test_query_files_take_tabs_commas_headers_and_question_marks(tmp_path: Path) -> None:
    tsv = tmp_path / "q.tsv"
    tsv.write_text("# comment\ne00042\tr03\n\n?\tr03\te00007\ne00001\tr01\t?\n")
    rows = roam.read_queries(tsv)
    assert [(r.line, r.target) for r in rows] == [(2, "tail"), (4, "head"), (5, "tail")]
    csv = tmp_path / "q.csv"
    csv.write_text("relation,tail\nr03,e00007\n")
    assert [(r.head, r.relation, r.tail, r.line) for r in roam.read_queries(csv)] == \
        [(None, "r03", "e00007", 2)]
    heads = tmp_path / "heads.tsv"
    heads.write_text("r03\te00007\n")
    assert roam.read_queries(heads, target="head")[0].tail == "e00007"


def test_malformed_query_lines_are_listed_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text("e1\tr1\ne1\tr1\te2\ta\tb\n?\tr1\t?\n")
    with pytest.raises(DataError) as error:
        roam.read_queries(path)
    message = str(error.value)
    assert "2 malformed line(s)" in message
    assert f"{path}:2: expected 2 or 3 fields, got 5" in message
    assert f"{path}:3: a query needs exactly one open end" in message
    triples = tmp_path / "t.tsv"
    triples.write_text("e1\tr1\t?\n")
    with pytest.raises(DataError, match=r"t.tsv:1: the tail is missing"):
        roam.read_queries(triples, complete=True)


def test_export_writes_dgl_ke_layout_with_names_and_config(runs, tmp_path: Path) -> None:
    run = runs["roam"]
    files = {p.name for p in run.export_embeddings(tmp_path / "emb")}
    prefix = "synthetic-tiny_roam"
    assert {f"{prefix}_entity.npy", f"{prefix}_relation.npy", f"{prefix}_entity_group0.npy",
            f"{prefix}_entity_group1.npy", "entities.tsv", "relations.tsv", "config.json",
            "embeddings.json"} == files
    kg = run.kg
    entities = np.load(tmp_path / "emb" / f"{prefix}_entity.npy")
    assert entities.shape == (kg.num_entities, 16) and entities.dtype == np.float32
    assert torch.equal(torch.from_numpy(entities), run.model.inputs.structure.weight.detach())
    relations = (tmp_path / "emb" / "relations.tsv").read_text().splitlines()
    assert len(relations) == 2 * kg.num_relations and relations[-1].endswith("^-1")
    assert (tmp_path / "emb" / "entities.tsv").read_text().splitlines()[3] == \
        f"3\t{kg.entity_names[3]}"
    manifest = json.loads((tmp_path / "emb" / "embeddings.json").read_text())
    assert manifest["files"][f"{prefix}_entity_group1.npy"]["shape"] == [kg.num_entities, 16]
    assert json.loads((tmp_path / "emb" / "config.json").read_text())["graph"] == kg.name


def test_tsv_export_holds_the_same_vectors_and_projector_metadata(runs, tmp_path: Path) -> None:
    run = runs["tucker"]
    run.export_embeddings(tmp_path / "npy")
    run.export_embeddings(tmp_path / "tsv", format="tsv")
    for table in ("entity", "relation"):
        stem = f"synthetic-tiny_tucker_{table}"
        dense = np.load(tmp_path / "npy" / f"{stem}.npy")
        text = np.loadtxt(tmp_path / "tsv" / f"{stem}.tsv", delimiter="\t", dtype=np.float32)
        assert np.allclose(dense, text, rtol=1e-6, atol=1e-7)
        metadata = (tmp_path / "tsv" / f"{table}_metadata.tsv").read_text().splitlines()
        assert len(metadata) == len(dense)
    assert np.array_equal(np.load(tmp_path / "npy" / "synthetic-tiny_tucker_entity.npy"),
                          run.model.entities.weight.detach().numpy())


def test_export_never_leaves_a_half_written_folder(runs, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run = runs["tucker"]
    out = tmp_path / "emb"
    run.export_embeddings(out)
    with pytest.raises(DataError, match="exists and is not empty"):
        run.export_embeddings(out)
    before = sorted(p.name for p in out.iterdir())

    def disk_full(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    with pytest.raises(OSError):
        run.export_embeddings(out, overwrite=True)
    with pytest.raises(OSError):
        run.export_embeddings(tmp_path / "fresh")
    assert sorted(p.name for p in out.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb"]


def test_keyword_settings_follow_the_command_line_and_name_unknown_keys() -> None:
    from roam_graph.training.config import keyword_settings
    settings = keyword_settings({"dim": 8, "relation_dim": 4, "epochs": 1, "num_groups": 2,
                                 "seed": 3, "evaluation.batch_size": 64})
    assert settings["model.dim"] == settings["model.cost_hidden"] == 8
    assert settings["model.relation_dim"] == 4
    assert settings["training.epochs"] == 1 and settings["model.num_groups"] == 2
    assert settings["seed"] == 3 and settings["evaluation.batch_size"] == 64
    with pytest.raises(DataError, match="unknown setting 'epoch'"):
        keyword_settings({"epoch": 1})


def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The README's Python example, executed as it is printed there (in a temporary folder)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- api-example -->\n```python\n(.*?)```", readme, re.S)
    assert len(blocks) == 1, "README must hold one ```python block marked <!-- api-example -->"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROAM_DATA_DIR", str(tmp_path / "data"))
    exec(compile(blocks[0], "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "e00042" in printed and "rank" in printed
    assert (tmp_path / "runs" / "tiny" / "best.pt").is_file()
    assert (tmp_path / "embeddings" / "synthetic-tiny_roam_entity_group0.npy").is_file()


def test_a_run_stopped_before_its_first_validation_loads_its_last_checkpoint_with_a_note(
        runs, tmp_path: Path) -> None:
    import shutil
    folder = tmp_path / "stopped"
    shutil.copytree(runs["tucker"].folder, folder)
    (folder / "best.pt").unlink()
    notes: list[str] = []
    run = roam.load_run(folder, log=notes.append)
    assert len(notes) == 1 and "using last.pt" in notes[0]
    assert len(run.predict_tails(QUERIES[:1], top_k=3)) == 3
    with pytest.warns(UserWarning, match="no best.pt yet"):
        roam.load_run(folder)
    (folder / "last.pt").unlink()
    with pytest.raises(DataError, match="no checkpoint yet"):
        roam.load_run(folder)
