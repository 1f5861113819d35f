"""Training precision (``training.precision``, training/precision.py): fp32 on a CPU by default,
bf16 autocast for the matrix products with the Sinkhorn plan and the losses in fp32, fp16 only
on CUDA. The CUDA paths are not run here (no GPU); bf16 autocast runs on the CPU."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from roam_graph.data.errors import DataError
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model import build_model, resolve_config, total_loss
from roam_graph.training.config import load_config
from roam_graph.training.precision import autocast, gradient_scaler, resolve_precision
from roam_graph.training.trainer import run_training

CPU = torch.device("cpu")


def test_auto_is_fp32_on_a_cpu_and_fp16_needs_cuda() -> None:
    assert resolve_precision("auto", CPU) == torch.float32
    assert resolve_precision("bf16", CPU) == torch.bfloat16
    with pytest.raises(DataError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)
    assert gradient_scaler(torch.bfloat16) is None and gradient_scaler(torch.float32) is None


def test_an_unknown_precision_is_refused_with_the_flag_that_set_it() -> None:
    with pytest.raises(DataError, match=r"--precision: precision 'fp8' is not one of auto"):
        load_config(None, {"training.precision": "fp8"}, graph="synthetic-tiny",
                    origins={"training.precision": "--precision"})


def test_bf16_autocast_keeps_the_plan_and_the_loss_in_fp32(kg: MultimodalKG) -> None:
    config = resolve_config("roam", dim=16, relation_dim=16, expert_hidden=16, cost_hidden=16,
                            num_groups=3)
    heads, relations = torch.arange(32), torch.arange(32) % (2 * kg.num_relations)
    one_group = build_model(replace(config, num_groups=1), kg.num_entities,
                            2 * kg.num_relations, kg.modalities).eval()  # no routing to flip
    with torch.no_grad():
        exact = one_group(heads, relations).scores
        with autocast(CPU, torch.bfloat16):
            rounded = one_group(heads, relations).scores
    difference = float((rounded.float() - exact).abs().max())
    assert 1e-4 < difference < 0.1                            # the products ran in bf16
    model = build_model(config, kg.num_entities, 2 * kg.num_relations, kg.modalities).train()
    with autocast(CPU, torch.bfloat16):
        output = model(heads, relations)
    assert output.routing.plan.dtype == torch.float32         # Sinkhorn did not
    targets = torch.zeros(32, kg.num_entities)
    targets[:, 0] = 1.0
    loss, _ = total_loss(output, targets, config.ot_weight, "softmax", config.ot_epsilon)
    assert loss.dtype == torch.float32 and math.isfinite(float(loss))
    loss.backward()
    assert all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in model.parameters())


def test_a_bf16_run_trains_and_evaluates_like_an_fp32_one(kg: MultimodalKG, tmp_path: Path
                                                          ) -> None:
    settings = {"model.dim": 16, "model.relation_dim": 16, "model.expert_hidden": 16,
                "model.cost_hidden": 16, "training.epochs": 2, "training.eval_every": 1,
                "training.lr": 0.01, "training.loss": "softmax", "device": "cpu"}
    results = {}
    for precision in ("fp32", "bf16"):
        config = load_config(None, {**settings, "training.precision": precision},
                             graph="synthetic-tiny")
        results[precision] = run_training(config, kg, tmp_path / precision, log=lambda _: None,
                                          progress=False).test
    # bf16 keeps 8 bits of mantissa: the runs differ, but both learn the same amount
    assert results["bf16"]["mrr"] == pytest.approx(results["fp32"]["mrr"], rel=0.5)
