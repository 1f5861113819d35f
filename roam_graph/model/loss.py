"""The training objective (Eq. 9-11)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from roam_graph.model.outputs import ModelOutput


def triple_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L_triple of Eq. 10 as binary cross-entropy on logits, averaged over scored pairs.

    ``targets`` holds 1 for positives and 0 for negatives (label-smoothed in 1-N training); the
    mean instead of Eq. 10's sum keeps the loss scale independent of batch size and N."""
    return F.binary_cross_entropy_with_logits(scores, targets)


def softmax_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the softmax over candidates against the normalised targets (LibKGE's
    1vsAll / KvsAll with CE). Not the paper's Eq. 10, but it learns far faster early on: with
    1-N BCE the first epochs mostly push every score down (docs/training.md)."""
    distribution = targets / targets.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return -(distribution * torch.log_softmax(scores, dim=1)).sum(dim=1).mean()


LOSSES = {"bce": triple_loss, "softmax": softmax_loss}


def total_loss(output: ModelOutput, targets: torch.Tensor, ot_weight: float,
               loss: str = "bce") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_total = L_triple + lambda * L_OT`` (Eq. 9); multi-head models sum L_triple over heads.

    Returns the loss and its detached parts (for logging; no host sync here — the caller
    decides when to read them)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    triple = sum(LOSSES[loss](scores, targets) for scores in output.head_scores)
    total = triple + ot_weight * output.ot_loss
    return total, {"triple": triple.detach(), "ot": output.ot_loss.detach()}
