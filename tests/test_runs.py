"""Specification of run folders (roam_graph.training.runs): a configuration resolved with
overrides; a finished run reused only with the same settings, an interrupted one resumed; what a
run wrote read back; its model loaded only for the graph it was trained on. Training is replaced
by a stand-in that writes the files a finished run has, so the rule is tested, not the trainer."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from roam_graph.data.errors import DataError
from roam_graph.training import runs
from roam_graph.training.config import load_config
from roam_graph.training.reports import write_config
from roam_graph.training.runs import (
    check_same_settings,
    load_trained_model,
    read_metrics,
    read_run_history,
    resolve_run_config,
    train_or_reuse,
)

TINY = {"model.dim": 8, "model.relation_dim": 8, "training.epochs": 1}


def tiny(**extra: object):  # noqa: ANN201 (an ExperimentConfig)
    return load_config(None, {**TINY, **extra}, graph="synthetic-tiny")


class StandIn:
    """Records each training call and writes what a finished run leaves: config.json and
    metrics.json."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, bool]] = []

    def __call__(self, config, kg, out: Path, resume: bool) -> None:  # noqa: ANN001
        self.calls.append((out, resume))
        out.mkdir(parents=True, exist_ok=True)
        write_config(out, config)
        (out / "metrics.json").write_text(json.dumps({"mrr": 0.5}), encoding="utf-8")


def finished_run(out: Path, **extra: object) -> StandIn:
    train = StandIn()
    train_or_reuse(tiny(**extra), None, out, train=train, log=lambda _: None)
    return train


# -- configuration --------------------------------------------------------------------------------
def test_a_run_config_is_the_base_with_overrides_and_seed_checked_like_a_config_file() -> None:
    config = resolve_run_config(tiny(), {"training.lr": 0.05}, seed=3)
    assert (config.training.lr, config.seed, config.model.dim, config.graph) == \
        (0.05, 3, 8, "synthetic-tiny")
    with pytest.raises(DataError, match="--lr: lr must be > 0"):
        resolve_run_config(tiny(), {"training.lr": -1}, origins={"training.lr": "--lr"})


def test_model_keys_limit_what_a_run_inherits_so_a_variant_resolves_its_own_fields() -> None:
    base = tiny(**{"model.variant": "sep"})
    assert base.model.expert_layout == "sep"
    inherited = resolve_run_config(base, {}, model_keys=frozenset({"model", "dim"}))
    assert (inherited.model.expert_layout, inherited.model.dim) == ("moseg", 8)
    assert resolve_run_config(base, {}).model.expert_layout == "sep"


def test_without_a_base_the_overrides_apply_to_the_defaults() -> None:
    config = resolve_run_config(None, {"graph": "synthetic-tiny", "training.epochs": 3})
    assert (config.graph, config.training.epochs, config.model.dim) == ("synthetic-tiny", 3, 256)


# -- train or reuse -------------------------------------------------------------------------------
def test_a_new_folder_is_trained_from_the_start(tmp_path: Path) -> None:
    lines: list[str] = []
    train = StandIn()
    state = train_or_reuse(tiny(), None, tmp_path / "run", train=train, log=lines.append,
                           label="row: ")
    assert state == "new" and train.calls == [(tmp_path / "run", False)]
    assert lines == [f"row: training -> {tmp_path / 'run'}"]


def test_a_finished_run_with_the_same_settings_is_reused_not_trained(tmp_path: Path) -> None:
    finished_run(tmp_path)
    lines: list[str] = []
    train = StandIn()
    assert train_or_reuse(tiny(), None, tmp_path, train=train, log=lines.append) == "finished"
    assert train.calls == []
    assert lines == [f"finished earlier in {tmp_path}, not repeated"]


def test_a_finished_run_with_other_settings_is_refused_naming_folder_and_setting(
        tmp_path: Path) -> None:
    finished_run(tmp_path)
    train = StandIn()
    with pytest.raises(DataError, match=rf"{tmp_path}: holds a finished run with other settings "
                                        r"\(training.epochs: 1 -> 2\); use another --out"):
        train_or_reuse(tiny(**{"training.epochs": 2}), None, tmp_path, train=train)
    assert train.calls == []
    with pytest.raises(DataError, match=r"seed: 0 -> 1"):
        train_or_reuse(tiny(seed=1), None, tmp_path, train=train)


def test_where_files_live_and_the_device_do_not_make_another_run(tmp_path: Path) -> None:
    finished_run(tmp_path)
    moved = tiny(data_dir=str(tmp_path / "cache"), source="elsewhere", device="cpu")
    assert train_or_reuse(moved, None, tmp_path, train=StandIn(), log=lambda _: None) == \
        "finished"


def test_a_setting_the_saved_run_predates_is_reported_and_the_run_reused(tmp_path: Path) -> None:
    finished_run(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    del saved["training"]["label_smoothing"]
    (tmp_path / "config.json").write_text(json.dumps(saved), encoding="utf-8")
    lines: list[str] = []
    check_same_settings(tmp_path, tiny(), lines.append)
    assert lines == [f"note: {tmp_path} was made before setting(s) training.label_smoothing "
                     "existed; reused as it is"]


def test_only_the_compared_model_settings_decide_whether_a_run_is_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    finished_run(tmp_path)
    other_groups = tiny(**{"model.num_groups": 7})
    with pytest.raises(DataError, match="model.num_groups: 4 -> 7"):
        check_same_settings(tmp_path, other_groups)
    monkeypatch.setattr(runs, "compared_model_keys", lambda model: frozenset({"dim"}))
    check_same_settings(tmp_path, other_groups)  # a setting the model does not read
    with pytest.raises(DataError, match="model.dim: 8 -> 16"):
        check_same_settings(tmp_path, tiny(**{"model.dim": 16}))


def test_metrics_without_a_config_is_refused_rather_than_guessed(tmp_path: Path) -> None:
    finished_run(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(DataError, match="metrics.json without a readable config.json"):
        train_or_reuse(tiny(), None, tmp_path, train=StandIn())


def test_an_interrupted_run_is_resumed(tmp_path: Path) -> None:
    (tmp_path / "last.pt").write_bytes(b"")
    lines: list[str] = []
    train = StandIn()
    assert train_or_reuse(tiny(), None, tmp_path, train=train, log=lines.append) == \
        "interrupted"
    assert train.calls == [(tmp_path, True)]
    assert lines == [f"resuming the interrupted run in {tmp_path}"]


# -- reading a run --------------------------------------------------------------------------------
def test_history_rows_are_floats_without_the_cells_an_epoch_left_empty(tmp_path: Path) -> None:
    assert read_run_history(tmp_path) == []
    (tmp_path / "history.csv").write_text("epoch,loss,valid_mrr\n1,0.5,\n2,0.25,0.125\n",
                                          encoding="utf-8")
    assert read_run_history(tmp_path) == [{"epoch": 1.0, "loss": 0.5},
                                          {"epoch": 2.0, "loss": 0.25, "valid_mrr": 0.125}]


def test_metrics_are_read_back_and_a_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="metrics.json: file not found"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.json").write_text('{"mrr": 0.25}', encoding="utf-8")
    assert read_metrics(tmp_path) == {"mrr": 0.25}
    (tmp_path / "metrics.json").write_text('{"mrr": ', encoding="utf-8")
    with pytest.raises(DataError, match="metrics.json: not valid JSON"):
        read_metrics(tmp_path)


def test_a_model_is_loaded_only_for_the_graph_it_was_trained_on(tmp_path: Path) -> None:
    write_config(tmp_path, tiny())
    (tmp_path / "best.pt").write_bytes(b"")
    other = SimpleNamespace(name="other-graph")
    with pytest.raises(DataError, match="trained on graph 'synthetic-tiny', not 'other-graph'"):
        load_trained_model(tmp_path, other)
    (tmp_path / "best.pt").unlink()
    with pytest.raises(DataError, match="no best.pt; is this the folder of a finished run"):
        load_trained_model(tmp_path, other)


def test_a_finished_run_is_compared_only_on_the_settings_its_model_reads(tmp_path: Path
                                                                         ) -> None:
    tucker = tiny(**{"model.model": "tucker", "model.expert_form": "mlp"})
    write_config(tmp_path / "tucker", tucker)
    (tmp_path / "tucker" / "metrics.json").write_text("{}", encoding="utf-8")
    check_same_settings(tmp_path / "tucker", tiny(**{"model.model": "tucker",
                                                     "model.expert_form": "residual"}))
    roam = tiny(**{"model.expert_form": "mlp"})
    write_config(tmp_path / "roam", roam)
    (tmp_path / "roam" / "metrics.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match="model.expert_form: 'mlp' -> 'residual'"):
        check_same_settings(tmp_path / "roam", tiny(**{"model.expert_form": "residual"}))
