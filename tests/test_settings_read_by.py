"""``settings_read_by(model)`` names the model keys a model reads: ROAM reads them all, and a
baseline's parameters, scores, loss and gradients do not move when any other key changes (so a
Tucker run need not be refused for an ``expert_form`` it ignores)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pytest
import torch

from roam_graph.data import Modality
from roam_graph.model import build_model, resolve_config, total_loss
from roam_graph.model.config import CHOICES, MODALITIES, MODELS, ModelConfig, settings_read_by

N, R = 30, 6


def test_roam_reads_every_key_and_the_baselines_a_subset() -> None:
    every = frozenset(f.name for f in fields(ModelConfig))
    assert settings_read_by("roam") == every
    assert settings_read_by("sinkhorn-moe") == every - {"variant"}   # variants are ROAM's
    assert settings_read_by("tucker") < settings_read_by("momok") < every
    assert {"dim", "relation_dim", "input_dropout"} <= settings_read_by("tucker")
    assert "expert_form" not in settings_read_by("tucker")
    with pytest.raises(ValueError, match="unknown model 'transe'"):
        settings_read_by("transe")


def other_value(name: str, value: Any) -> Any:
    """A valid value of key ``name`` different from ``value``."""
    if name in CHOICES:
        return next(choice for choice in CHOICES[name] if choice != value)
    if name == "modalities":
        return MODALITIES if value != MODALITIES else ("structure",)
    if name in ("model", "variant"):
        return {"model": "roam", "variant": "sep"}[name]
    if value is None:          # an optional size (feature_width): set it
        return 4
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return value * 0.5 + 0.05   # floats: dropouts stay in [0, 1), the others positive


def features() -> dict[str, Modality]:
    generator = torch.Generator().manual_seed(0)
    return {"image": Modality(torch.randn(N, 7, generator=generator), torch.ones(N, dtype=bool)),
            "text": Modality(torch.randn(N, 5, generator=generator), torch.ones(N, dtype=bool))}


def outcome(config: ModelConfig) -> list[torch.Tensor]:
    """Initial parameters, one training step's scores, loss and gradients (seeded)."""
    torch.manual_seed(0)
    model = build_model(config, N, R, features(), seed=0).train()
    torch.manual_seed(1)
    heads, relations = torch.arange(8), torch.arange(8) % R
    targets = torch.zeros(8, N).scatter_(1, (heads[:, None] + 1) % N, 1.0)
    output = model(heads, relations)
    loss, _ = total_loss(output, targets, config.ot_weight, "bce", config.ot_epsilon)
    loss.backward()
    parameters = [p.detach().clone() for p in model.parameters()]
    gradients = [p.grad for p in model.parameters() if p.grad is not None]
    return [*parameters, output.scores.detach(), loss.detach(), *gradients]


def same(first: list[torch.Tensor], second: list[torch.Tensor]) -> bool:
    return len(first) == len(second) and all(
        a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, second, strict=True))


BASELINES = [m for m in MODELS if settings_read_by(m) != settings_read_by("roam")]


@pytest.mark.parametrize("model", BASELINES)
def test_a_key_a_baseline_does_not_read_changes_nothing_it_computes(model: str) -> None:
    base = resolve_config(model, dim=8, relation_dim=6, expert_hidden=8, cost_hidden=8,
                          num_groups=2)
    reference = outcome(base)
    assert not same(reference, outcome(replace(base, hidden_dropout2=0.1)))  # a key it reads
    ignored = [f.name for f in fields(ModelConfig) if f.name not in settings_read_by(model)]
    assert ignored
    for name in ignored:
        changed = replace(base, **{name: other_value(name, getattr(base, name))})
        assert same(reference, outcome(changed)), \
            f"{model} computes something else when {name} changes"
