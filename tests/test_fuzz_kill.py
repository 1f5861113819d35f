"""A run killed at random points (SIGKILL: no cleanup runs) is always inspectable - config.json,
history.csv, checkpoints and metrics are whole, predict.py answers or says why not - and
``--resume`` carries it on to exactly the result of the uninterrupted run.

The kill points are random (set ROAM_KILL_SEED to repeat a failing sequence; it is printed)."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from pipeline_helpers import load_pipeline, run_cli

from roam_graph.cli import run as run_command
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.training.config import load_config
from roam_graph.training.trainer import run_training

REPO = Path(__file__).resolve().parents[1]
EPOCHS, EVAL_EVERY = 9, 3
TINY = ["--graph", "synthetic-tiny", "--dim", "8", "--groups", "2", "--batch-size", "256",
        "--eval-every", str(EVAL_EVERY), "--epochs", str(EPOCHS), "--device", "cpu", "--quiet"]
KILLS = 3
#: Seconds after the run announces itself ("run 1/1") within which it is killed: about its set-up
#: (~1 s here) and training (~3 s), so kills land before, during and after epochs, evaluations,
#: checkpoint and metrics writes.
WINDOW = 4.5


def start(out: Path, data_dir: Path, resume: bool) -> subprocess.Popen[str]:
    env = dict(os.environ, ROAM_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(REPO / "pipelines" / "run.py"), *TINY,
                             "--out", str(out), *(["--resume"] if resume else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def kill_at_random(process: subprocess.Popen[str], delay: float) -> str:
    """Wait until the run has started training, then SIGKILL it ``delay`` seconds later."""
    watchdog = threading.Timer(300, process.kill)  # a hung run must not hang the test suite
    watchdog.start()
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("run 1/1"):
            break
    time.sleep(delay)
    process.kill()
    lines.append(process.stdout.read())
    process.wait()
    watchdog.cancel()
    return "".join(lines)


def check_inspectable(out: Path, reference: dict, predict_module, capsys) -> None:
    """Every file present is whole and consistent; predict.py works or says why it cannot."""
    if not (out / "config.json").is_file():
        return  # killed before the run started: nothing to inspect yet
    assert load_config(out / "config.json").to_dict() == reference
    for checkpoint in out.glob("*.pt"):
        torch.load(checkpoint, weights_only=True)  # raises on a half-written file
    if (out / "metrics.json").is_file():
        assert "mrr" in json.loads((out / "metrics.json").read_text())
    if (out / "history.csv").is_file():
        with open(out / "history.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [int(row["epoch"]) for row in rows] == list(range(1, len(rows) + 1))
        for row in rows:
            evaluated = int(row["epoch"]) % EVAL_EVERY == 0 or int(row["epoch"]) == EPOCHS
            assert row["loss_triple"] and row["seconds"]
            # no validation column yet before the first evaluation
            assert bool(row.get("valid_mrr")) == evaluated, row
    code, err = run_cli(predict_module, ["--run", str(out), "--head", "e00000", "--relation",
                                         "r00", "--top", "3"], capsys)
    has_checkpoint = (out / "best.pt").is_file() or (out / "last.pt").is_file()
    assert (code, bool(err)) == ((0, False) if has_checkpoint else (2, True)), err
    assert has_checkpoint or "no checkpoint yet" in err


def test_a_run_killed_at_random_points_resumes_to_the_uninterrupted_result(
        kg: MultimodalKG, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    seed = int(os.environ.get("ROAM_KILL_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    predict = load_pipeline("predict")
    settings, flags = run_command.overrides(run_command.parse_args(TINY))
    config = load_config(None, settings, graph="synthetic-tiny", origins=flags)
    straight = run_training(config, kg, tmp_path / "straight", log=lambda _: None,
                            progress=False)
    out, data_dir = tmp_path / "killed", tmp_path / "data"
    monkeypatch.setenv("ROAM_DATA_DIR", str(data_dir))  # predict.py finds the same cache
    delays = [rng.uniform(0, WINDOW) for _ in range(KILLS)]
    for delay in delays:
        output = kill_at_random(start(out, data_dir, (out / "config.json").is_file()), delay)
        assert "Traceback" not in output, f"ROAM_KILL_SEED={seed}: {output[-2000:]}"
        check_inspectable(out, config.to_dict(), predict, capsys)
    done = start(out, data_dir, (out / "config.json").is_file())
    output, _ = done.communicate(timeout=300)
    assert done.returncode == 0, f"ROAM_KILL_SEED={seed}, delays {delays}: {output[-2000:]}"
    check_inspectable(out, config.to_dict(), predict, capsys)
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(metrics[key] == value for key, value in straight.test.items()), \
        f"ROAM_KILL_SEED={seed}, delays {delays}"
    a, b = (torch.load(folder / "last.pt", weights_only=True)["model"]
            for folder in (tmp_path / "straight", out))
    assert all(torch.equal(a[k], b[k]) for k in a)
