"""bench/train_step.py times the step a run's configuration takes."""

from __future__ import annotations

import subprocess
import sys

from pipeline_helpers import REPO


def test_it_times_the_configured_step_and_names_what_it_timed(tmp_path) -> None:
    command = [sys.executable, str(REPO / "bench" / "train_step.py"), "--graph",
               "synthetic-tiny", "--data-dir", str(tmp_path), "--dim", "8", "--steps", "2",
               "--threads", "1", "--loss", "softmax", "--set", "model.routing=top1",
               "--profile"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    summary = next(line for line in result.stdout.splitlines() if " s/step " in line)
    assert summary.startswith("synthetic-tiny: ") and "(median of 2)" in summary
    assert "routing top1, loss softmax" in summary and "dim 8" in summary
    assert "Self CPU time total" in result.stdout             # the profile's table


def test_it_counts_the_matrix_products_of_a_whole_epoch(tmp_path) -> None:
    command = [sys.executable, str(REPO / "bench" / "train_step.py"), "--graph",
               "synthetic-tiny", "--data-dir", str(tmp_path), "--dim", "8", "--threads", "1",
               "--set", "model.routing=top1", "--epoch-flops"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "TFLOP in epoch 1" in line)
    assert float(line.split(": ")[1].split(" TFLOP")[0]) > 0 and "routing top1" in line
