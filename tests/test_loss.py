"""The per-query losses: the fast forms equal their textbook definitions."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from roam_graph.model.loss import bce_per_query, softmax_per_query


def scores_and_targets() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 3, 50, generator=generator) * 8
    scores[0, 0, :4] = torch.tensor([-60.0, 60.0, -25.0, 25.0])   # past softplus's threshold
    targets = torch.full((6, 1, 50), 0.1 / 50)
    targets[:, 0, torch.randint(0, 50, (6,), generator=generator)] = 0.9 + 0.1 / 50
    return scores, targets


def test_bce_is_the_logistic_loss_averaged_over_candidates() -> None:
    scores, targets = scores_and_targets()
    expected = F.binary_cross_entropy_with_logits(
        scores, targets.expand_as(scores), reduction="none").mean(dim=-1)
    assert torch.allclose(bce_per_query(scores, targets), expected, rtol=1e-6, atol=1e-6)


def test_bce_gradient_is_sigmoid_minus_target() -> None:
    scores, targets = scores_and_targets()
    scores.requires_grad_(True)
    bce_per_query(scores, targets).sum().backward()
    expected = (torch.sigmoid(scores.detach()) - targets) / scores.shape[-1]
    assert torch.allclose(scores.grad, expected, atol=1e-7)


def test_softmax_loss_is_cross_entropy_against_the_normalised_targets() -> None:
    scores, targets = scores_and_targets()
    distribution = targets / targets.sum(dim=-1, keepdim=True)
    expected = -(distribution * torch.log_softmax(scores, dim=-1)).sum(dim=-1)
    assert torch.allclose(softmax_per_query(scores, targets), expected, rtol=1e-6, atol=1e-6)
