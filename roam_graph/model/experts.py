"""Sub-experts (Eq. 2) as one batched bank of one-hidden-layer MLPs, and the fixed-size summary
of each expert's parameters that the group representation g(W^(k)) of Eq. 7 is built from.

Every expert maps a d-dimensional modality input to a d-dimensional embedding:
``v = W2 relu(W1 x + b1) + b2`` (``form="mlp"``, the paper's one-hidden-layer MLP), or
``v = x + W2 relu(W1 x + b1) + b2`` with ``W2 ~ 0, b2 = 0`` at initialisation
(``form="residual"``: nearly the identity at initialisation, so the learned structure embedding
reaches the scorer almost unchanged while the MLP learns a correction; docs/model.md "Experts").
The bank holds ``E`` experts as stacked tensors so that any (input, expert) pairing runs as one
einsum, never as a Python loop over experts.
"""

from __future__ import annotations

import math

import torch
from torch import nn

EXPERT_FORMS: tuple[str, ...] = ("mlp", "residual")
#: A residual expert's output weights start at this fraction of nn.Linear's bound rather than at
#: exactly 0: still close to the identity (the branch adds ~1 % of a structure embedding's
#: norm), but no two groups compute the same function, so routing has something to choose
#: between from the first step (docs/model.md, "Symmetry breaking").
RESIDUAL_INIT_SCALE = 0.01


class ExpertBank(nn.Module):
    """``num_experts`` one-hidden-layer MLPs ``dim -> hidden -> dim`` (Eq. 2), plain or
    residual (module docstring). Plain experts use ``nn.Linear``'s default initialisation."""

    def __init__(self, num_experts: int, dim: int, hidden: int, form: str = "mlp") -> None:
        super().__init__()
        if form not in EXPERT_FORMS:
            raise ValueError(f"expert form {form!r}: choose one of {', '.join(EXPERT_FORMS)}")
        self.residual = form == "residual"
        bound_in, bound_hidden = 1 / math.sqrt(dim), 1 / math.sqrt(hidden)
        # a residual expert starts near the identity: its MLP branch outputs almost 0
        out_bound = bound_hidden * (RESIDUAL_INIT_SCALE if self.residual else 1.0)
        self.w1 = nn.Parameter(torch.empty(num_experts, dim, hidden).uniform_(-bound_in, bound_in))
        self.b1 = nn.Parameter(torch.empty(num_experts, hidden).uniform_(-bound_in, bound_in))
        self.w2 = nn.Parameter(
            torch.empty(num_experts, hidden, dim).uniform_(-out_bound, out_bound))
        b2_bound = 0.0 if self.residual else out_bound
        self.b2 = nn.Parameter(torch.empty(num_experts, dim).uniform_(-b2_bound, b2_bound))

    def apply_table(self, inputs: torch.Tensor, expert_of: torch.Tensor) -> torch.Tensor:
        """Apply experts to modality inputs by a table.

        Args:
            inputs: ``[n, M, d]`` one input per modality.
            expert_of: int64 ``[M, O]``: the expert used for modality ``m`` under option ``o``.
        Returns:
            ``[n, M, O, d]``: ``v[i, m, o] = W_{expert_of[m, o]}(inputs[i, m])`` (Eq. 2).
        """
        w1, b1 = self.w1[expert_of], self.b1[expert_of]          # [M, O, d, h], [M, O, h]
        w2, b2 = self.w2[expert_of], self.b2[expert_of]          # [M, O, h, d], [M, O, d]
        hidden = torch.relu(torch.einsum("nmd,modh->nmoh", inputs, w1) + b1)
        out = torch.einsum("nmoh,mohd->nmod", hidden, w2) + b2
        return out + inputs.unsqueeze(2) if self.residual else out

    def parameter_summary(self) -> torch.Tensor:
        """A fixed-size vector per expert describing its function form (for Eq. 7).

        ``s = [mean_in(W1) || b1 || mean_in(W2) || b2]`` of size ``2 * hidden + 2 * dim``: the
        average incoming weight of every hidden and output unit plus the biases. It is a
        differentiable function of the parameters only (not of any input), so gradients of the
        routing cost reach the experts through g, as Eq. 7 intends. Returns ``[E, 2h + 2d]``."""
        return torch.cat([self.w1.mean(dim=1), self.b1, self.w2.mean(dim=1), self.b2], dim=-1)

    @property
    def summary_width(self) -> int:
        return 2 * self.w1.shape[2] + 2 * self.w1.shape[1]
