"""Training: same seed -> same result, resume continues exactly, early stopping stops, the model
is selected on validation only, and checkpoints are never half-written."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from roam_graph.data.errors import DataError
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.training import checkpoint as checkpoint_module
from roam_graph.training.config import ExperimentConfig, load_config
from roam_graph.training.trainer import run_training


def tiny_config(**training: object) -> ExperimentConfig:
    overrides = {"model.dim": 8, "model.relation_dim": 8, "model.expert_hidden": 8,
                 "model.cost_hidden": 8, "model.num_groups": 2, "training.batch_size": 256,
                 "training.eval_every": 1, "training.lr": 0.01, "device": "cpu"}
    overrides.update({f"training.{k}": v for k, v in training.items()})
    return load_config(None, overrides, graph="synthetic-tiny")


def quiet(_: str) -> None:
    pass


def parameters(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def test_same_seed_gives_the_same_result(kg: MultimodalKG, tmp_path: Path) -> None:
    config = tiny_config(epochs=2)
    first = run_training(config, kg, tmp_path / "a", log=quiet, progress=False)
    second = run_training(config, kg, tmp_path / "b", log=quiet, progress=False)
    assert first.test == second.test


def test_same_seed_gives_the_same_result_with_two_threads(kg: MultimodalKG, tmp_path: Path,
                                                           ) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        config = tiny_config(epochs=2)
        runs = [run_training(config, kg, tmp_path / name, log=quiet, progress=False).test
                for name in ("a", "b")]
    finally:
        torch.set_num_threads(before)
    assert runs[0] == runs[1]


def test_resumed_run_ends_exactly_like_the_uninterrupted_one(kg: MultimodalKG,
                                                             tmp_path: Path) -> None:
    straight = run_training(tiny_config(epochs=3), kg, tmp_path / "straight", log=quiet,
                            progress=False)
    run_training(tiny_config(epochs=1), kg, tmp_path / "resumed", log=quiet, progress=False)
    resumed = run_training(tiny_config(epochs=3), kg, tmp_path / "resumed", resume=True,
                           log=quiet, progress=False)
    assert resumed.test == straight.test
    final_a, final_b = (parameters(tmp_path / name / "last.pt") for name in ("straight", "resumed"))
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    with open(tmp_path / "resumed" / "history.csv") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [1, 2, 3]


def test_resume_refuses_a_different_experiment(kg: MultimodalKG, tmp_path: Path) -> None:
    run_training(tiny_config(epochs=1), kg, tmp_path, log=quiet, progress=False)
    other = tiny_config(epochs=2, lr=0.5)
    with pytest.raises(DataError, match=r"different training settings \['lr'\]"):
        run_training(other, kg, tmp_path, resume=True, log=quiet, progress=False)


def test_resume_accepts_a_run_from_before_a_setting_existed(kg: MultimodalKG,
                                                           tmp_path: Path) -> None:
    """A model key added after the run started (its default keeps the old behaviour) is not a
    difference; a key both know that differs is named in the refusal."""
    straight = run_training(tiny_config(epochs=2), kg, tmp_path / "straight", log=quiet,
                            progress=False)
    run_training(tiny_config(epochs=1), kg, tmp_path / "old", log=quiet, progress=False)
    state = torch.load(tmp_path / "old" / "last.pt", weights_only=True)
    del state["progress"]["config"]["model"]["feature_width"]   # as saved before it existed
    torch.save(state, tmp_path / "old" / "last.pt")
    resumed = run_training(tiny_config(epochs=2), kg, tmp_path / "old", resume=True, log=quiet,
                           progress=False)
    assert resumed.test == straight.test
    other = tiny_config(epochs=3)
    other = replace(other, model=replace(other.model, num_groups=other.model.num_groups + 1))
    with pytest.raises(DataError, match=r"different model than the saved run \(num_groups: "):
        run_training(other, kg, tmp_path / "old", resume=True, log=quiet, progress=False)


def test_resume_without_a_checkpoint_says_so(kg: MultimodalKG, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no checkpoint to resume from"):
        run_training(tiny_config(epochs=1), kg, tmp_path, resume=True, log=quiet,
                     progress=False)


def test_early_stopping_stops_when_validation_does_not_improve(kg: MultimodalKG,
                                                               tmp_path: Path) -> None:
    frozen = tiny_config(epochs=10, patience=2, lr=1e-12)   # weights stay put (BN stats move)
    result = run_training(frozen, kg, tmp_path, log=quiet, progress=False)
    assert result.stopped_early and result.last_epoch < 10
    assert result.last_epoch == result.best_epoch + 2   # patience 2, evaluating every epoch


def test_model_is_selected_on_validation_and_tested_once(kg: MultimodalKG,
                                                         tmp_path: Path) -> None:
    result = run_training(tiny_config(epochs=3), kg, tmp_path, log=quiet, progress=False)
    with open(tmp_path / "history.csv") as handle:
        history = list(csv.DictReader(handle))
    best = max(history, key=lambda row: float(row["valid_mrr"]))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["selected_epoch"] == int(best["epoch"]) == result.best_epoch
    assert metrics["validation"]["mrr"] == pytest.approx(float(best["valid_mrr"]))
    for key in ("mrr", "mr", "hits@1", "hits@3", "hits@10", "per_relation", "per_category",
                "tie_handling", "optimistic", "pessimistic"):
        assert key in metrics
    assert metrics["tie_handling"] == "realistic"
    ranks = torch.load(tmp_path / "ranks.pt", weights_only=True)
    assert ranks["ranks"]["realistic"]["tail"].shape == (len(kg.triples("test")),)


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(
        kg: MultimodalKG, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_training(tiny_config(epochs=1), kg, tmp_path, log=quiet, progress=False)
    before = (tmp_path / "last.pt").read_bytes()

    def dying_save(state: object, path: Path) -> None:
        Path(path).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny_config(epochs=2), kg, tmp_path, resume=True, log=quiet,
                     progress=False)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert not list(tmp_path.glob("*.part"))


def test_negative_sampling_regime_trains(kg: MultimodalKG, tmp_path: Path) -> None:
    config = tiny_config(epochs=1, regime="negative-sampling", negatives=8,
                         negative_strategy="bernoulli+filtered")
    result = run_training(config, kg, tmp_path, log=quiet, progress=False)
    assert 0 < result.test["mrr"] <= 1


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  epochs: 3\n  learning_rate: 0.1\n")
    with pytest.raises(DataError, match=r"bad.yaml \[training\]: unknown key\(s\) "
                                        r"\['learning_rate'\]"):
        load_config(bad)
    with pytest.raises(DataError, match="regime 'sgd' is not one of"):
        load_config(None, {"training.regime": "sgd"})


def test_every_benchmark_config_holds_table_13_values() -> None:
    from roam_graph.training.config import CONFIG_DIR
    expected = {"mkg-w": (0.0005, 4, 20, 0.005), "mkg-y": (0.0005, 4, 20, 0.005),
                "db15k": (0.001, 5, 50, 0.001), "kvc16k": (0.001, 5, 50, 0.001)}
    for graph, (lr, groups, iterations, weight) in expected.items():
        config = load_config(CONFIG_DIR / f"{graph}.yaml")
        assert (config.training.lr, config.model.num_groups, config.model.sinkhorn_iterations,
                config.model.ot_weight) == (lr, groups, iterations, weight)
        assert (config.training.batch_size, config.training.epochs, config.model.dim) == \
            (1024, 2000, 256)


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config = replace(tiny_config(epochs=2), seed=7)
    assert load_config(None, {}, graph="synthetic-tiny").graph == "synthetic-tiny"
    assert config.to_dict()["training"]["epochs"] == 2 and config.to_dict()["seed"] == 7


def test_config_is_written_first_and_history_has_a_row_per_epoch(kg: MultimodalKG,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """config.json exists before the first epoch ends; every epoch gets a history row, with
    the validation columns filled only where it was evaluated (eval_every 2, last epoch 3)."""
    from roam_graph.training import trainer
    seen = []
    real_train_epoch = trainer.train_epoch

    def train_epoch(*args: object, **kwargs: object) -> dict[str, float]:
        seen.append((tmp_path / "config.json").is_file())
        return real_train_epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_epoch", train_epoch)
    run_training(tiny_config(epochs=3, eval_every=2), kg, tmp_path, log=quiet, progress=False)
    assert seen == [True, True, True]
    assert load_config(tmp_path / "config.json") == tiny_config(epochs=3, eval_every=2)
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["epoch"], bool(row["valid_mrr"]), bool(row["loss_triple"])) for row in rows] \
        == [("1", False, True), ("2", True, True), ("3", True, True)]


def test_resume_of_a_run_killed_in_its_first_epoch_starts_again(kg: MultimodalKG,
                                                                tmp_path: Path) -> None:
    """config.json but no last.pt: --resume checks it and trains from epoch 1."""
    straight = run_training(tiny_config(epochs=1), kg, tmp_path / "a", log=quiet, progress=False)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text(json.dumps(tiny_config(epochs=1).to_dict()))
    lines: list[str] = []
    again = run_training(tiny_config(epochs=1), kg, tmp_path / "b", resume=True,
                         log=lines.append, progress=False)
    assert again.test == straight.test and any("starting at epoch 1" in line for line in lines)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "config.json").write_text(json.dumps(tiny_config(epochs=1, lr=0.5)
                                                           .to_dict()))
    with pytest.raises(DataError, match=r"config.json: --resume with different training"):
        run_training(tiny_config(epochs=1), kg, tmp_path / "c", resume=True, log=quiet,
                     progress=False)
