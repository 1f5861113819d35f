"""Frozen features projected once onto their principal components (``feature_width``,
model/inputs.py ``principal_components``): the adapter then reads ``width`` columns, not the
full feature width; what is kept and dropped is the variance, and it is reported."""

from __future__ import annotations

import pytest
import torch

from roam_graph.data import Modality
from roam_graph.model import resolve_config
from roam_graph.model.inputs import ModalityInputs, principal_components
from roam_graph.model.roam import RoamModel


def low_rank_features(rows: int = 200, width: int = 40, rank: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(rows, rank, generator=generator)
            @ torch.randn(rank, width, generator=generator) + 3.0)


def test_components_beyond_the_rank_add_nothing_and_all_variance_is_kept() -> None:
    values = low_rank_features()
    present = torch.ones(200, dtype=torch.bool)
    projected, kept = principal_components(values, present, 5)
    assert projected.shape == (200, 5) and kept == pytest.approx(1.0, abs=1e-6)
    covariance = projected.T.double() @ projected.double() / 199
    variances = covariance.diagonal()
    off_diagonal = covariance - torch.diag(variances)
    assert float(off_diagonal.abs().max()) < 1e-3 * float(variances.max())  # uncorrelated
    assert bool((variances[:-1] >= variances[1:]).all())               # largest first
    assert float(projected.mean(dim=0).abs().max()) < 1e-3             # centred


def test_fewer_components_keep_less_variance_and_absent_rows_stay_zero() -> None:
    values = low_rank_features()
    present = torch.arange(200) % 4 != 0
    values[~present] = 0.0
    projected, kept = principal_components(values, present, 2)
    assert 0.0 < kept < 1.0
    assert bool((projected[~present] == 0).all())
    again, _ = principal_components(values, present, 2)
    assert torch.equal(projected, again)                               # deterministic


def test_the_adapter_reads_the_projection_and_a_narrow_feature_is_left_alone() -> None:
    present = torch.ones(200, dtype=torch.bool)
    features = {"image": Modality(low_rank_features(width=40), present),
                "text": Modality(low_rank_features(width=3), present)}
    inputs = ModalityInputs(200, 8, ("structure", "image", "text"), features, feature_width=6)
    assert inputs.adapters["image"].in_features == 6
    assert inputs.adapters["text"].in_features == 3
    assert set(inputs.variance_kept) == {"image"}
    full = ModalityInputs(200, 8, ("structure", "image", "text"), features)
    assert full.adapters["image"].in_features == 40 and full.variance_kept == {}


def test_fine_tuned_features_are_never_projected() -> None:
    config = resolve_config("roam", dim=8, relation_dim=8, expert_hidden=8, cost_hidden=8,
                            feature_width=4, finetune_features=True)
    present = torch.ones(200, dtype=torch.bool)
    model = RoamModel(config, 200, 6, {"image": Modality(low_rank_features(), present)})
    assert model.inputs.adapters["image"].in_features == 40
