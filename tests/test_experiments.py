"""Specification of the experiment suites: every paper table/figure runs as one command on the
tiny synthetic graph, writes its table and PNGs, and a second call reuses finished runs."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from roam_graph.data.errors import DataError
from roam_graph.experiments.report import write_suite_outputs
from roam_graph.experiments.runner import row_config, run_suite, slug, unavailable_reason
from roam_graph.experiments.suites import SUITES, Row, get_suite
from roam_graph.training.config import load_config

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
TINY = {"model.dim": 8, "model.relation_dim": 8, "model.expert_hidden": 8,
        "model.cost_hidden": 8, "model.sinkhorn_iterations": 5, "training.epochs": 1,
        "training.batch_size": 512, "evaluation.batch_size": 512}


def tiny_base(**extra: object):
    return load_config(None, {**TINY, **extra}, graph="synthetic-tiny")


def run_and_report(name: str, kg, out: Path, runs: int = 1, log=lambda _: None):
    suite = get_suite(name)
    base = tiny_base()
    records, skipped = run_suite(suite, base, kg, out, runs, isolate=False, log=log)
    return suite, records, write_suite_outputs(suite, base, kg, records, skipped, out, runs)


@pytest.mark.parametrize("name", sorted(SUITES))
def test_every_suite_writes_one_table_row_per_variant_and_its_figures(name, kg, tmp_path):
    suite, records, written = run_and_report(name, kg, tmp_path)
    with open(tmp_path / "table.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["label"] for r in rows] == [row.label for row in suite.rows]
    assert all(0 < float(r["mrr_mean"]) <= 1 for r in rows)
    markdown = (tmp_path / "table.md").read_text(encoding="utf-8")
    assert all(f"| {row.label} |" in markdown for row in suite.rows)
    pngs = [p for p in written if p.suffix == ".png"]
    assert {p.stem for p in pngs} == set(suite.figures)
    assert all(p.read_bytes().startswith(PNG) for p in pngs)


def test_a_second_call_reuses_finished_runs(kg, tmp_path):
    run_and_report("relation", kg, tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/seed0/metrics.json")}
    lines: list[str] = []
    run_and_report("relation", kg, tmp_path, log=lines.append)
    assert len(stamps) == 2
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert all("finished earlier" in line for line in lines)


def test_runs_give_mean_and_std_and_one_folder_per_seed(kg, tmp_path):
    run_and_report("relation", kg, tmp_path, runs=2)
    assert sorted(p.name for p in (tmp_path / "runs" / "w-o-r").iterdir()) == ["seed0", "seed1"]
    markdown = (tmp_path / "table.md").read_text(encoding="utf-8")
    assert markdown.count(" ± ") >= 2


def test_an_unfinished_run_is_resumed_not_restarted(kg, tmp_path):
    suite = get_suite("relation")
    out = tmp_path / "runs" / slug(suite.rows[0].label) / "seed0"
    from roam_graph.training.trainer import run_training
    run_training(row_config(tiny_base(), suite.rows[0], 0), kg, out, progress=False,
                 log=lambda _: None)
    (out / "metrics.json").unlink()               # as if killed before the test evaluation
    lines: list[str] = []
    run_suite(suite, tiny_base(), kg, tmp_path, isolate=False, log=lines.append)
    assert "resuming" in lines[0]
    assert (out / "metrics.json").is_file()


def test_a_table_rebuilds_from_run_folders_without_checkpoints(kg, tmp_path):
    """Result folders are committed with metrics, history and config only: the suite reuses
    them, writes its table and curves, and leaves out the figures that need a model."""
    run_and_report("main", kg, tmp_path)
    for checkpoint in (tmp_path / "runs").rglob("*.pt"):
        checkpoint.unlink()
    (tmp_path / "routing.png").unlink()
    (tmp_path / "modality_weights.png").unlink()
    suite, records, written = run_and_report("main", kg, tmp_path)
    assert len(records) == len(suite.rows)
    assert {path.name for path in written} == {"table.md", "table.csv", "curves.png",
                                               "efficiency.png"}


def test_reusing_an_out_folder_with_other_settings_is_refused(kg, tmp_path):
    run_and_report("relation", kg, tmp_path)
    with pytest.raises(DataError, match=r"other settings \(training.epochs: 1 -> 2"):
        run_suite(get_suite("relation"), tiny_base(**{"training.epochs": 2}), kg, tmp_path,
                  isolate=False)


def test_rows_take_model_and_variant_from_the_row_and_widths_from_the_base():
    base = tiny_base(**{"model.variant": "sep", "model.num_groups": 3})
    tucker = row_config(base, Row("Tucker", {"model.model": "tucker"}), seed=4)
    assert (tucker.model.model, tucker.model.dim, tucker.seed) == ("tucker", 8, 4)
    assert tucker.model.modalities == ("structure",)
    roam = row_config(base, Row("w/o phi", {"model.variant": "cosine-cost"}), seed=0)
    assert (roam.model.expert_layout, roam.model.cost_function) == ("moseg", "cosine")
    assert roam.model.num_groups == 3


def test_a_config_files_routing_reaches_every_row_whose_variant_does_not_set_its_own():
    base = tiny_base(**{"model.routing": "anneal"})
    regor = {row.label: row_config(base, row, 0).model for row in get_suite("regor").rows}
    assert {label: m.routing for label, m in regor.items()} == dict.fromkeys(regor, "anneal")
    solvers = {row.label: row_config(base, row, 0).model.routing
               for row in get_suite("solvers").rows}
    assert solvers["TKSR"] == "soft" and solvers["ROAM (Sinkhorn)"] == "anneal"
    main = {row.label: row_config(base, row, 0).model for row in get_suite("main").rows}
    assert main["ROAM (top-1 routing)"].routing == main["Sinkhorn-MoE"].routing == "top1"
    assert main["Sinkhorn-MoE"].cost_function == "cosine"   # its own defaults, not the base's


def test_a_modality_row_the_graph_cannot_serve_is_reported_not_run():
    kg = SimpleNamespace(name="text-only-graph", modalities={"text": object()})
    image_row = Row("Image only", {"model.modalities": ["image"]})
    config = row_config(tiny_base(), image_row, 0)
    assert unavailable_reason(image_row, config, kg) == "no image features on text-only-graph"
    plain = Row("K = 3", {"model.num_groups": 3})
    assert unavailable_reason(plain, row_config(tiny_base(), plain, 0), kg) is None


def test_unknown_suite_is_a_clear_error():
    with pytest.raises(DataError, match="unknown suite 'tables'; choose one of main, "):
        get_suite("tables")


def test_paper_numbers_sit_next_to_ours_for_paper_graphs():
    regor = get_suite("regor")
    assert [row.paper.get("db15k") for row in regor.rows] == [43.38, 43.76, 43.71, 44.19, None]
    assert get_suite("main").rows[0].paper["fb15k237img"] == 42.66


def test_command_line_runs_a_suite_in_separate_processes(tmp_path, data_dir, kg):
    import subprocess
    out = tmp_path / "e"
    command = [sys.executable, str(REPO / "pipelines" / "experiments.py"), "--suite", "relation",
               "--graph", "synthetic-tiny", "--epochs", "1", "--dim", "8", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert "| with r (Full) |" in result.stdout
    assert (out / "runs" / "w-o-r" / "seed0" / "run.log").is_file()
    assert (out / "curves.png").read_bytes().startswith(PNG)


def test_command_line_lists_suites_and_rejects_a_missing_suite(capsys):
    sys.path.insert(0, str(REPO / "pipelines"))
    try:
        import experiments
    finally:
        sys.path.remove(str(REPO / "pipelines"))
    assert experiments.main(["--list"]) == 0
    assert "Table 12" in capsys.readouterr().out
    assert experiments.main([]) == 2
    assert "--suite is required" in capsys.readouterr().err


def test_loading_a_model_from_a_folder_without_a_finished_run_names_the_missing_file(kg, tmp_path):
    from roam_graph.training.runs import load_trained_model
    with pytest.raises(DataError, match="no config.json; is this the folder of a finished run"):
        load_trained_model(tmp_path, kg)


def test_a_run_made_before_a_setting_existed_is_reused_with_a_note(kg, tmp_path):
    import json
    run_and_report("relation", kg, tmp_path)
    config_path = next(tmp_path.glob("runs/w-o-r/seed0/config.json"))
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    del saved["training"]["label_smoothing"]
    config_path.write_text(json.dumps(saved), encoding="utf-8")
    lines: list[str] = []
    run_suite(get_suite("relation"), tiny_base(), kg, tmp_path, isolate=False, log=lines.append)
    assert any("before setting(s) training.label_smoothing existed" in line for line in lines)


def test_the_table_keeps_the_paper_row_order_and_marks_rows_not_run():
    from roam_graph.experiments.tables import CSV_FIGURES, table_markdown
    entry = {"label": "Structure only", "runs": 1,
             **{f"{f}_{s}": 0.25 for f in CSV_FIGURES for s in ("mean", "std")}}
    markdown = table_markdown(get_suite("modalities"), "db15k", [entry],
                              {"Image only": "no image features on db15k"}, "tiny")
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert lines[1:] == ["| Structure only | 25.00 | 41.11 |", "| Image only | n/a | 41.02 |"]
    assert "Not run: Image only (no image features on db15k)." in markdown


def test_set_gives_any_config_key_to_every_row_with_yaml_typed_values():
    from roam_graph.training.config import parse_settings
    settings, origins = parse_settings(["model.expert_form=residual", "training.lr=1e-2",
                                        "model.attention_noise=false"])
    assert settings == {"model.expert_form": "residual", "training.lr": 0.01,
                        "model.attention_noise": False}
    assert origins["training.lr"] == "--set 'training.lr=1e-2'"  # errors name the --set item
    base = tiny_base(**settings)
    row = row_config(base, get_suite("regor").rows[0], seed=0)
    assert (row.model.expert_form, row.training.lr, row.model.attention_noise) == \
        ("residual", 0.01, False)
    with pytest.raises(DataError, match="--set 'optimiser.lr=1': expected KEY=VALUE"):
        parse_settings(["optimiser.lr=1"])
    with pytest.raises(DataError, match="--set 'lr': expected KEY=VALUE"):
        parse_settings(["lr"])


def test_figures_read_histories_whose_epochs_were_not_all_evaluated(tmp_path):
    """history.csv has a row per epoch; validation columns are empty at epochs not evaluated."""
    from roam_graph.experiments.figures import plot_curves
    from roam_graph.experiments.runner import RunRecord, history_figures
    from roam_graph.training.runs import read_run_history
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text(
        "epoch,seconds,peak_memory_mb,valid_seconds,valid_mrr,routing_entropy\n"
        "1,2.0,10,,,\n2,4.0,12,1.0,0.25,0.5\n3,6.0,11,,,\n", encoding="utf-8")
    history = read_run_history(run)
    assert history_figures(history, selected=2) == {
        "seconds_per_epoch": 4.0, "inference_seconds": 1.0, "peak_memory_mb": 12.0,
        "routing_entropy": 0.5}
    path = plot_curves([RunRecord("row", 0, run, {})], tmp_path / "curves.png", "t")
    assert path.read_bytes().startswith(PNG)


def test_rows_option_trains_only_the_named_rows_and_tables_the_rest_if_finished(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import roam_graph.experiments.runner as runner
    trained: list[str] = []
    monkeypatch.setattr(runner, "train_one",
                        lambda config, kg, run_out, *args: trained.append(run_out.parent.name))
    suite, base = get_suite("relation"), load_config(None, {}, graph="synthetic-tiny")
    with pytest.raises(DataError, match="--rows: no row nope in suite 'relation'"):
        run_suite(suite, base, None, tmp_path, only=["nope"])
    with pytest.raises(DataError, match="metrics.json"):  # the fake training wrote nothing
        run_suite(suite, base, None, tmp_path, only=["w/o r"])
    assert trained == ["w-o-r"]                          # the other row was not trained
