"""Experiment tracking (roam_graph.tracking): TensorBoard event files beside history.csv."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from roam_graph.data.errors import DataError
from roam_graph.tracking import make_tracker, scalar_tag


def test_history_columns_map_to_grouped_tags() -> None:
    assert [scalar_tag(c) for c in ("loss_triple", "valid_mrr", "valid_seconds",
                                    "oracle_agreement")] == \
        ["loss/triple", "valid/mrr", "time/valid_seconds", "routing/oracle_agreement"]


def test_unknown_tracker_is_named(tmp_path: Path) -> None:
    assert make_tracker("none", tmp_path) is None
    with pytest.raises(DataError, match="--tracker 'mlflow': choose one of none, tensorboard"):
        make_tracker("mlflow", tmp_path)


def test_tensorboard_events_hold_every_history_row_and_the_test_metrics(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import roam_graph.api as roam
    run = roam.train(graph="synthetic-tiny", out=tmp_path / "run", data_dir=tmp_path / "data",
                     epochs=2, dim=8, num_groups=2, eval_every=1, tracker="tensorboard")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/triple", "loss/ot", "valid/mrr", "valid/hits@10", "time/seconds",
            "routing/oracle_agreement", "test/mrr"} <= tags
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    logged = [(e.step, e.value) for e in events.Scalars("valid/mrr")]
    assert [step for step, _ in logged] == list(history["epoch"])
    assert all(math.isclose(v, h, rel_tol=1e-6) for (_, v), h in zip(logged, history["valid_mrr"],
                                                                     strict=True))
    (test,) = events.Scalars("test/mrr")
    assert math.isclose(test.value, run.metrics["mrr"], rel_tol=1e-6)
