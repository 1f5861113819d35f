"""Optimisers: Adam over every parameter (the paper's setting, dense mode), or, in large-graph
mode (docs/SCALING.md), ``SparseAdam`` for the entity-indexed tables plus Adam for the rest.

Why: with negative sampling a step looks up a few thousand entities, but Adam over a dense
``[N, d]`` table reads and writes all ``N`` rows (gradient, two moments, the weights) every step,
so a step costs ``O(N d)`` however small the batch. Sparse gradients and ``SparseAdam`` (lazy
Adam: moments of a row are updated only when the row is in the batch) make the table's share of
a step ``O(rows in the batch x d)``. The two optimisers are wrapped in one ``CombinedOptimiser``
so training, gradient scaling and checkpoints see one optimiser with one state dict.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from roam_graph.model.contract import KGModel
from roam_graph.training.config import TrainingConfig


def use_sparse_entity_gradients(model: KGModel | DistributedDataParallel) -> list[nn.Parameter]:
    """Switch every entity-indexed table of ``model`` (ROAM's and MoMoK's structure embeddings
    and fine-tuned features, Tucker's entity embeddings: ``KGModel.sparse_entity_tables``) to
    sparse gradients; returns those parameters. Idempotent. Call it before wrapping the model
    in DistributedDataParallel, which decides at construction which parameters get sparse
    gradients (a wrapper's model is unwrapped here all the same)."""
    inner = model.module if isinstance(model, DistributedDataParallel) else model
    return inner.sparse_entity_tables()


class CombinedOptimiser(torch.optim.Optimizer):
    """Several optimisers over disjoint parameters, stepped together; one state dict.

    ``param_groups`` is the concatenation of the parts' groups (the same dicts, so a change of
    ``lr`` reaches the part), which is what ``GradScaler`` and learning-rate schedulers use.
    ``Optimizer.__init__`` is deliberately not called: parameters and state live in the parts.
    """

    def __init__(self, parts: dict[str, torch.optim.Optimizer]) -> None:
        if not parts:
            raise ValueError("CombinedOptimiser needs at least one optimiser")
        self.parts = dict(parts)
        self.defaults: dict[str, Any] = {}

    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [group for part in self.parts.values() for group in part.param_groups]

    @property
    def state(self) -> dict[torch.Tensor, Any]:  # type: ignore[override]
        """Read-only merged view of the parts' per-parameter states."""
        return {p: s for part in self.parts.values() for p, s in part.state.items()}

    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for part in self.parts.values():
            part.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts.values():
            part.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {"parts": {name: part.state_dict() for name, part in self.parts.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        saved = state_dict.get("parts") if isinstance(state_dict, dict) else None
        if not isinstance(saved, dict) or set(saved) != set(self.parts):
            names = sorted(saved) if isinstance(saved, dict) else "a plain optimiser state"
            raise ValueError(f"optimiser state has parts {names}, this optimiser has "
                             f"{sorted(self.parts)} (was the checkpoint written in another "
                             f"training mode? --large-graph must match)")
        for name, part in self.parts.items():
            part.load_state_dict(saved[name])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        raise NotImplementedError("add parameter groups to one of CombinedOptimiser.parts")

    def __repr__(self) -> str:
        return f"CombinedOptimiser({', '.join(self.parts)})"


def make_optimiser(model: KGModel, config: TrainingConfig) -> torch.optim.Optimizer:
    """Adam over ``model.parameters()`` (dense mode: exactly the optimiser of earlier releases,
    so its checkpoints stay loadable), or in large-graph mode ``CombinedOptimiser`` of
    ``sparse`` (``SparseAdam`` over the entity tables) and ``dense`` (Adam over the rest)."""
    if not config.large_graph:
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    sparse = use_sparse_entity_gradients(model)
    if not sparse:  # e.g. no structure modality and frozen features: nothing is entity-indexed
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    chosen = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in chosen]
    parts: dict[str, torch.optim.Optimizer] = {"sparse": torch.optim.SparseAdam(sparse,
                                                                                lr=config.lr)}
    if dense:
        parts["dense"] = torch.optim.Adam(dense, lr=config.lr)
    return CombinedOptimiser(parts)


def clip_grad_norm(parameters: Iterable[nn.Parameter], max_norm: float) -> torch.Tensor:
    """``nn.utils.clip_grad_norm_`` that also accepts sparse gradients (whose duplicate rows
    are summed before the norm is taken, as the optimiser sums them). Without sparse gradients
    it is ``clip_grad_norm_`` itself, so dense runs are unchanged."""
    with_grad = [p for p in parameters if p.grad is not None]
    if not any(p.grad.is_sparse for p in with_grad):
        return nn.utils.clip_grad_norm_(with_grad, max_norm)
    norms = [torch.linalg.vector_norm(p.grad.coalesce().values() if p.grad.is_sparse else p.grad)
             for p in with_grad]
    total = torch.linalg.vector_norm(torch.stack(norms))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for p in with_grad:
        p.grad.mul_(scale)
    return total
