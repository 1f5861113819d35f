"""The command-line entry points, end to end on the tiny synthetic graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["--graph", "synthetic-tiny", "--dim", "8", "--groups", "2", "--batch-size", "256",
        "--eval-every", "1", "--quiet"]


def pipeline(name: str, *args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ROAM_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(REPO / "pipelines" / f"{name}.py"), *args],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pipelines")
    out = root / "runs"
    result = pipeline("run", *TINY, "--epochs", "2", "--runs", "2", "--out", str(out),
                      data_dir=root / "data")
    assert result.returncode == 0, result.stderr
    return out, root / "data"


def test_repeated_runs_write_metrics_and_a_summary(two_runs: tuple[Path, Path]) -> None:
    out, _ = two_runs
    for run in ("run-0", "run-1"):
        metrics = json.loads((out / run / "metrics.json").read_text())
        assert {"mrr", "mr", "hits@1", "hits@3", "hits@10", "per_relation",
                "per_category", "tie_handling", "validation"} <= set(metrics)
        assert (out / run / "history.csv").is_file() and (out / run / "ranks.pt").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test"]["mrr"]["runs"] == 2
    assert "± " in (out / "summary.md").read_text()


def test_compare_reports_a_wilcoxon_p_value(two_runs: tuple[Path, Path]) -> None:
    out, data_dir = two_runs
    result = pipeline("compare", str(out / "run-0"), str(out / "run-1"), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "Wilcoxon" in result.stdout and "hits@1" in result.stdout


def test_predict_lists_top_tails_and_the_route(two_runs: tuple[Path, Path]) -> None:
    out, data_dir = two_runs
    result = pipeline("predict", "--run", str(out / "run-0"), "--head", "e00042",
                      "--relation", "r03^-1", "--top", "3", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "top 3" in result.stdout and "routed to group" in result.stdout


def test_predict_names_an_unknown_entity(two_runs: tuple[Path, Path]) -> None:
    out, data_dir = two_runs
    result = pipeline("predict", "--run", str(out / "run-0"), "--head", "nobody",
                      "--relation", "r03", data_dir=data_dir)
    assert result.returncode == 2 and "unknown head entity 'nobody'" in result.stderr


def test_resume_continues_from_the_saved_epoch(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = pipeline("run", *TINY, "--epochs", "1", "--out", str(out), data_dir=tmp_path / "d")
    assert first.returncode == 0, first.stderr
    second = pipeline("run", *TINY, "--epochs", "2", "--out", str(out), "--resume",
                      data_dir=tmp_path / "d")
    assert second.returncode == 0, second.stderr
    assert "resuming after epoch 1" in second.stdout
    assert json.loads((out / "metrics.json").read_text())["selected_epoch"] in (1, 2)


def test_bad_flags_end_with_a_clear_message(tmp_path: Path) -> None:
    result = pipeline("run", *TINY, "--epochs", "0", "--out", str(tmp_path / "x"),
                      data_dir=tmp_path / "d")
    assert result.returncode == 2 and "--epochs: must be >= 1, got 0" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "x").exists()
    result = pipeline("run", *TINY, "--epochs", "1", "--resume", "--out", str(tmp_path / "y"),
                      data_dir=tmp_path / "d")
    assert result.returncode == 2 and "no checkpoint to resume from" in result.stderr
