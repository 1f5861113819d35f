"""The sampling study (roam_graph.experiments.sampling_study, pipelines/sample.py) on the tiny
synthetic graph: one CSV row per configuration, a PNG, reuse of finished runs, clear errors."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from roam_graph.data.errors import DataError
from roam_graph.experiments.sampling_study import (
    COLUMNS,
    CONFIGURATIONS,
    GROUPS,
    run_study,
    select,
    study_config,
)

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_base(epochs: int = 1):  # noqa: ANN201 (an ExperimentConfig)
    return study_config("synthetic-tiny", dim=8, epochs=epochs, batch_size=512, negatives=4)


@pytest.fixture(scope="module")
def study(kg, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN001, ANN201
    out = tmp_path_factory.mktemp("sampling")
    lines: list[str] = []
    rows = run_study(tiny_base(), kg, out, log=lines.append)
    return out, rows, lines


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_csv_has_one_row_per_configuration_with_the_expected_columns(study) -> None:
    out, rows, _ = study
    table = read_csv(out / "sampling.csv")
    assert [r["name"] for r in table] == [c.name for c in CONFIGURATIONS]
    assert [r["group"] for r in table] == [c.group for c in CONFIGURATIONS]
    assert tuple(table[0]) == COLUMNS
    for row in table:
        assert 0 < float(row["test_mrr"]) <= 1 and 0 <= float(row["test_hits@10"]) <= 1
        assert 0 < float(row["valid_mrr"]) <= 1
        assert float(row["train_seconds"]) > 0 and int(row["epochs"]) == 1
        assert int(row["train_triples"]) > 0
    assert len(rows) == len(table)


def test_the_png_plot_and_markdown_table_are_written(study) -> None:
    out, _, _ = study
    assert (out / "sampling.png").read_bytes().startswith(PNG_SIGNATURE)
    table = (out / "sampling.md").read_text(encoding="utf-8")
    assert all(f"| {c.name} |" in table for c in CONFIGURATIONS)
    assert not list(out.glob("*.part"))


def test_configurations_that_train_the_same_share_one_run(study) -> None:
    out, rows, lines = study
    by_name = {r["name"]: r for r in rows}
    # the base is negative sampling, uniform, k = 4: these four are the same training
    for name in ("uniform", "k4", "negative-sampling", "edges-1.0"):
        assert by_name[name]["run"] == "uniform"
        assert by_name[name]["test_mrr"] == by_name["uniform"]["test_mrr"]
    runs = {r["run"] for r in rows}
    assert {p.name for p in (out / "runs").iterdir()} == runs
    assert sum("same run as uniform" in line for line in lines) == 3


def test_subgraph_configurations_train_on_part_of_train(study, kg) -> None:
    _, rows, _ = study
    by_name = {r["name"]: r for r in rows}
    total = len(kg.triples("train"))
    assert by_name["edges-1.0"]["train_triples"] == total
    assert by_name["edges-0.5"]["train_triples"] == round(0.5 * total)
    assert by_name["edges-0.25"]["train_triples"] == round(0.25 * total)
    assert 0 < by_name["neighbourhood"]["train_triples"] < total
    assert by_name["1-n"]["negatives"] == "" and by_name["k64"]["negatives"] == 64


def test_a_second_study_does_not_repeat_finished_runs(study, kg) -> None:
    out, rows, _ = study
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/metrics.json")}
    lines: list[str] = []
    again = run_study(tiny_base(), kg, out, log=lines.append)
    assert sum("not repeated" in line for line in lines) == len(CONFIGURATIONS)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again == rows


def test_a_finished_run_with_other_settings_is_refused(study, kg) -> None:
    out, _, _ = study
    with pytest.raises(DataError, match=r"runs/k1: holds a finished run .*training.epochs"):
        run_study(tiny_base(epochs=2), kg, out, select(["negatives-per-positive"]),
                  log=lambda _: None)


def test_groups_select_configurations_and_an_unknown_group_is_a_clear_error() -> None:
    assert {c.group for c in select(["regime", "subgraph"])} == {"regime", "subgraph"}
    assert len(select(None)) == len(CONFIGURATIONS) and set(GROUPS) == {
        "negative-strategy", "negatives-per-positive", "regime", "subgraph"}
    with pytest.raises(DataError, match="--groups: unknown group 'nope'; choose from "
                                        "negative-strategy, "):
        select(["regime", "nope"])


def load_pipeline(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 (the module)
    """pipelines/sample.py as a module, run in this process (no second torch start-up)."""
    monkeypatch.syspath_prepend(str(REPO / "pipelines"))
    spec = importlib.util.spec_from_file_location("sample_pipeline",
                                                  REPO / "pipelines" / "sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pipeline_writes_csv_and_png_and_names_a_bad_group(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = load_pipeline(monkeypatch)
    command = ["--graph", "synthetic-tiny", "--epochs", "1", "--dim", "8", "--quiet",
               "--out", str(tmp_path / "s")]
    assert pipeline.main([*command, "--groups", "regime"]) == 0
    assert [r["name"] for r in read_csv(tmp_path / "s" / "sampling.csv")] == [
        "1-n", "negative-sampling"]
    assert (tmp_path / "s" / "sampling.png").read_bytes().startswith(PNG_SIGNATURE)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        pipeline.run_main(pipeline.main, [*command, "--groups", "regime,sizes"])
    assert stop.value.code == 2
    assert "error: --groups: unknown group 'sizes'" in capsys.readouterr().err


def test_a_run_saved_before_a_setting_existed_is_reused_with_a_note(kg, tmp_path: Path) -> None:
    regime = select(["regime"])
    run_study(tiny_base(), kg, tmp_path, regime, log=lambda _: None)
    saved = tmp_path / "runs" / "1-n" / "config.json"
    older = json.loads(saved.read_text(encoding="utf-8"))
    del older["training"]["num_workers"]  # as if written before the setting was added
    saved.write_text(json.dumps(older), encoding="utf-8")
    lines: list[str] = []
    run_study(tiny_base(), kg, tmp_path, regime, log=lines.append)
    assert any("before setting(s) training.num_workers existed" in line for line in lines)
    assert sum("not repeated" in line for line in lines) == len(regime)
