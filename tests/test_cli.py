"""``roam predict`` and ``roam export`` on a finished run, through the command's entry function
(the same function ``python pipelines/<name>.py`` runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import roam_graph.api as roam
from roam_graph.cli import main as roam_command


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    roam.train(graph="synthetic-tiny", out=root / "run", data_dir=root / "data", epochs=1,
               dim=8, num_groups=2)
    return root / "run"


def test_predict_writes_one_row_per_query_and_rank(run_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    queries = tmp_path / "queries.tsv"
    queries.write_text("head\trelation\ne00042\tr03\ne00001\tr01\n")
    out = tmp_path / "top.tsv"
    code = roam_command(["predict", "--run", str(run_dir), "--queries", str(queries),
                         "--top", "4", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(out, sep="\t", keep_default_na=False)
    assert len(table) == 8 and list(table["line"].unique()) == [2, 3]
    assert {"target", "head", "relation", "tail", "rank", "score", "known", "group",
            "weight_text"} <= set(table.columns)


def test_unknown_names_fail_with_every_line_listed_and_no_file(
        run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queries = tmp_path / "queries.tsv"
    queries.write_text("e00042\tr03\nnobody\tr03\ne00001\tr99\n?\tr03\tghost\n")
    out = tmp_path / "top.tsv"
    command = ["predict", "--run", str(run_dir), "--queries", str(queries), "--out", str(out)]
    assert roam_command(command) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: 3 row(s) with unknown names, nothing was predicted")
    for line, problem in ((2, "unknown head entity 'nobody'"), (3, "unknown relation 'r99'"),
                          (4, "unknown tail entity 'ghost'")):
        assert f"{queries}:{line}: {problem}" in error
    assert "Traceback" not in error and list(tmp_path.iterdir()) == [queries]
    assert roam_command([*command, "--skip-unknown"]) == 0
    assert "skipped 3 row(s)" in capsys.readouterr().err
    assert set(pd.read_csv(out, sep="\t")["line"]) == {1}


def test_triples_are_scored_into_a_csv_table(run_dir: Path, tmp_path: Path) -> None:
    triples = tmp_path / "triples.csv"
    triples.write_text("e00042,r03,e00007\ne00001,r01^-1,e00002\n")
    out = tmp_path / "scores.csv"
    assert roam_command(["predict", "--run", str(run_dir), "--triples", str(triples),
                         "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["tail"]) == ["e00007", "e00002"] and np.isfinite(table["score"]).all()


def test_one_query_prints_its_answers_and_route(run_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert roam_command(["predict", "--run", str(run_dir), "--tail", "e00042",
                         "--relation", "r03", "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "(?, r03, e00042) — top 3" in printed and "routed to group" in printed
    assert roam_command(["predict", "--run", str(run_dir), "--relation", "r03"]) == 2
    assert "give one of --head/--tail" in capsys.readouterr().err


def test_export_writes_the_folder_once(run_dir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "emb"
    assert roam_command(["export", "--run", str(run_dir), "--out", str(out)]) == 0
    assert "synthetic-tiny_roam_entity_group1.npy" in capsys.readouterr().out
    assert np.load(out / "synthetic-tiny_roam_relation.npy").shape == (20, 8)
    assert roam_command(["export", "--run", str(run_dir), "--out", str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert roam_command(["export", "--run", str(run_dir), "--out", str(out), "--format", "tsv",
                         "--overwrite"]) == 0
    assert (out / "entity_metadata.tsv").is_file() and not list(out.glob("*.npy"))
