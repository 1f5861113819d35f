"""Hyper-parameter search (roam_graph.tuning, ``roam tune``): spaces, resume, best config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roam_graph.data.errors import DataError
from roam_graph.tuning.space import SEARCH_DIR, load_space

optuna = pytest.importorskip("optuna")

TINY = ["--graph", "synthetic-tiny", "--dim", "8", "--epochs", "2", "--eval-every", "1",
        "--batch-size", "256", "--set", "model.num_groups=2"]


def tune(capsys: pytest.CaptureFixture[str], out: Path, data_dir: Path, *extra: str
         ) -> tuple[int, str]:
    from roam_graph.cli import main
    code = main(["tune", *TINY, "--data-dir", str(data_dir), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_every_default_space_reads_and_roam_searches_the_papers_fig3_knobs() -> None:
    spaces = {path.stem: load_space(path) for path in SEARCH_DIR.glob("*.yaml")}
    assert {"roam", "tucker", "momok", "sinkhorn-moe"} <= set(spaces)
    roam = {d.key: d for d in spaces["roam"].dimensions}
    assert set(roam) == {"training.lr", "model.sinkhorn_iterations", "model.ot_weight"}
    assert roam["training.lr"].log and roam["model.sinkhorn_iterations"].kind == "int"


@pytest.mark.parametrize(("text", "message"), [
    ("model.nope: {low: 1, high: 2}", "model.nope: not a config key a search can vary"),
    ("training.lr: {low: 0.1, high: 0.01}", "training.lr: needs numbers low < high"),
    ("training.lr: {low: 0.0, high: 0.1, log: true}", "a log range needs low > 0"),
    ("training.lr: {low: 0.001, high: 0.1, step: 2}", "step applies to integer ranges"),
    ("model.expert_form: {choices: []}", "choices must be a non-empty list"),
    ("- training.lr", "a search space maps config keys to ranges"),
])
def test_a_bad_space_names_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(text + "\n")
    with pytest.raises(DataError, match=message) as error:
        load_space(path)
    assert str(path) in str(error.value)


def test_a_second_search_resumes_and_the_best_yaml_reproduces_its_trial(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from roam_graph.cli import main
    out, data = tmp_path / "tune", tmp_path / "data"
    code, output = tune(capsys, out, data, "--trials", "3")
    assert code == 0, output
    assert "0 finished trial(s); running 3 more" in output
    code, output = tune(capsys, out, data, "--trials", "3")
    assert code == 0 and "3 finished trial(s); --trials 3 reached" in output
    code, output = tune(capsys, out, data, "--trials", "4")
    assert code == 0 and "3 finished trial(s); running 1 more" in output
    study = optuna.load_study(study_name="roam-tune", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 4
    for trial in study.trials:   # trials select on validation only: test is never evaluated
        folder = out / "trials" / str(trial.number)
        assert (folder / "best.pt").is_file() and not (folder / "metrics.json").exists()
    best = study.best_trial
    assert f"trial {best.number}, validation MRR {best.value:.6f}" in \
        (out / "best.yaml").read_text()
    assert main(["run", "--config", str(out / "best.yaml"), "--out", str(tmp_path / "again"),
                 "--quiet"]) == 0
    metrics = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert metrics["validation"]["mrr"] == pytest.approx(best.value, abs=1e-9)
    assert metrics["selected_epoch"] == best.user_attrs["selected_epoch"]
    assert len((out / "trials.csv").read_text().splitlines()) == 5


def test_a_trial_left_running_by_a_killed_search_is_tried_again(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, data = tmp_path / "tune", tmp_path / "data"
    assert tune(capsys, out, data, "--trials", "1")[0] == 0
    study = optuna.load_study(study_name="roam-tune", storage=f"sqlite:///{out / 'study.db'}")
    killed = study.ask()      # what a search killed mid-trial leaves: a running trial
    load_space(SEARCH_DIR / "roam.yaml").suggest(killed)
    code, output = tune(capsys, out, data, "--trials", "2")
    assert code == 0 and "1 interrupted one(s) queued again" in output
    trials = optuna.load_study(study_name="roam-tune",
                               storage=f"sqlite:///{out / 'study.db'}").trials
    assert trials[1].state == optuna.trial.TrialState.FAIL
    assert trials[2].user_attrs["retry_of"] == 1 and trials[2].params == killed.params


def test_a_study_is_resumed_only_with_its_own_settings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, data = tmp_path / "tune", tmp_path / "data"
    assert tune(capsys, out, data, "--trials", "1")[0] == 0
    code, output = tune(capsys, out, data, "--trials", "2", "--set", "training.lr=0.5")
    assert code == 2 and "holds a search with other settings" in output


def test_the_pruning_reporter_stops_a_run_the_pruner_rejects(tmp_path: Path, kg) -> None:
    from roam_graph.training.config import load_config
    from roam_graph.training.trainer import run_training
    from roam_graph.tuning.search import PruningReporter

    class Trial:
        def __init__(self) -> None:
            self.reported: list[tuple[float, int]] = []

        def report(self, value: float, step: int) -> None:
            self.reported.append((value, step))

        def should_prune(self) -> bool:
            return len(self.reported) == 2

    config = load_config(None, {"graph": "synthetic-tiny", "model.model": "tucker",
                                "model.dim": 8, "model.relation_dim": 8, "training.epochs": 5,
                                "training.eval_every": 1, "training.batch_size": 256})
    trial = Trial()
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 2"):
        run_training(config, kg, tmp_path / "run", log=lambda _: None, progress=False,
                     tracker=PruningReporter(trial, optuna.TrialPruned), evaluate_test=False)
    assert [step for _, step in trial.reported] == [1, 2]
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 3
