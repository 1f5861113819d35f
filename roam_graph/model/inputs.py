"""Modality inputs e_im (Section 4.1): learned structure embeddings and pre-computed image/text
features mapped to the model dimension by one linear input adapter per modality.

Decisions (docs/model.md): raw features are frozen buffers unless ``finetune_features``; each
feature modality has one adapter ``Linear(width -> dim)`` shared by all expert groups, so experts
see every modality at the same width; an entity lacking a modality gets a ``present`` flag of
False and is masked out of the attention (its adapter output is never used as if it were real).
``input_noise`` (Table 11) perturbs the pre-computed features once, with a fixed seed, by Gaussian
noise of that fraction of the features' standard deviation: the data is noisier, not the training.
Large-graph mode (docs/SCALING.md) switches the entity-indexed tables to sparse gradients
(``use_sparse_gradients``): a step then touches only the rows of the batch's entities, so its cost
does not grow with the number of entities.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from roam_graph.data.mmkg_data import Modality


def available_modalities(requested: tuple[str, ...], features: Mapping[str, Modality]
                         ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(used, dropped)``: structure is always available, feature modalities when the graph has
    them. A dropped modality is reported, never replaced by zeros."""
    used = tuple(m for m in requested if m == "structure" or m in features)
    if not used:
        raise ValueError(f"none of the modalities {list(requested)} is available; "
                         f"the graph has {['structure', *features]}")
    return used, tuple(m for m in requested if m not in used)


def principal_components(values: torch.Tensor, present: torch.Tensor, width: int
                         ) -> tuple[torch.Tensor, float]:
    """Frozen features ``[N, F]`` projected onto their first ``width`` principal components
    (of the rows ``present``; absent rows stay zero), and the share of the variance kept.

    Why: the adapter ``Linear(F -> d)`` over all N entities runs every 1-N step; at F = 4096 it
    is a large share of a step's FLOPs (bench/model_step.py), for inputs that never change. A
    fixed projection computed once makes the adapter read ``width`` columns instead (a linear
    adapter on the projection spans the same functions when ``width`` >= d, up to the variance
    dropped). Deterministic: the eigenvectors of the covariance (``eigh``, float64), each
    signed so that its largest entry is positive."""
    rows = values[present].double()
    mean = rows.mean(dim=0)
    centred = rows - mean
    eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred)   # ascending
    top = eigenvectors[:, -width:].flip(1)
    signs = torch.sign(top.gather(0, top.abs().argmax(dim=0, keepdim=True)))
    top = top * torch.where(signs == 0, 1.0, signs)
    projected = torch.zeros(values.shape[0], width, dtype=values.dtype)
    projected[present] = (centred @ top).to(values.dtype)
    kept = float(eigenvalues[-width:].sum() / eigenvalues.sum().clamp_min(1e-30))
    return projected, kept


class ModalityInputs(nn.Module):
    def __init__(self, num_entities: int, dim: int, names: tuple[str, ...],
                 features: Mapping[str, Modality], finetune_features: bool = False,
                 input_noise: float = 0.0, seed: int = 0,
                 feature_width: int | None = None) -> None:
        super().__init__()
        self.names = names
        #: modality -> share of the feature variance its principal components keep
        self.variance_kept: dict[str, float] = {}
        self.structure = nn.Embedding(num_entities, dim) if "structure" in names else None
        if self.structure is not None:
            nn.init.xavier_normal_(self.structure.weight)
        generator = torch.Generator().manual_seed(seed)
        self.adapters = nn.ModuleDict()
        self.raw = nn.ParameterDict()
        for name in names:
            if name == "structure":
                continue
            values = features[name].values.to(torch.float32).clone()
            present = features[name].present
            if input_noise > 0:
                scale = values[present].std() if bool(present.any()) else values.new_tensor(0.0)
                noise = torch.randn(values.shape, generator=generator) * input_noise * scale
                values = torch.where(present[:, None], values + noise, values)
            if feature_width is not None and not finetune_features \
                    and values.shape[1] > feature_width:
                values, self.variance_kept[name] = principal_components(values, present,
                                                                        feature_width)
            self.raw[name] = nn.Parameter(values, requires_grad=finetune_features)
            self.adapters[name] = nn.Linear(values.shape[1], dim)
            self.register_buffer(f"present_{name}", present.clone(), persistent=False)
        self.sparse = False

    def some_entity_lacks_every_modality(self) -> bool:
        """Whether an entity has none of the modalities used (never when structure is one)."""
        if self.structure is not None:
            return False
        present = torch.stack([getattr(self, f"present_{name}") for name in self.raw], dim=1)
        return not bool(present.any(dim=1).all())

    def use_sparse_gradients(self) -> list[nn.Parameter]:
        """Give the trainable entity-indexed tables (structure embeddings, fine-tuned raw
        features) sparse gradients when looked up by id; returns those parameters, which need a
        sparse optimiser (``roam_graph.training.optimisers``). Encoding all entities at once
        (``ids=None``, the 1-N regime) still produces dense gradients."""
        self.sparse = True
        tables = [self.raw[name] for name in self.raw if self.raw[name].requires_grad]
        if self.structure is not None:
            self.structure.sparse = True
            tables.insert(0, self.structure.weight)
        return tables

    def _rows(self, table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        # F.embedding(sparse=True) backpropagates a sparse [n, width] gradient; plain indexing
        # (kept for dense mode so its results stay bit-identical) a dense [N, width] one
        if self.sparse and table.requires_grad:
            return F.embedding(ids, table, sparse=True)
        return table[ids]

    def forward(self, ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs [n, M, dim], present bool [n, M])`` for entity ids (all entities if None)."""
        columns, present = [], []
        for name in self.names:
            if name == "structure":
                weight = self.structure.weight
                columns.append(weight if ids is None else self._rows(weight, ids))
                count = weight.shape[0] if ids is None else ids.shape[0]
                present.append(torch.ones(count, dtype=torch.bool, device=weight.device))
            else:
                raw = self.raw[name] if ids is None else self._rows(self.raw[name], ids)
                columns.append(self.adapters[name](raw))
                mask = getattr(self, f"present_{name}")
                present.append(mask if ids is None else mask[ids])
        return torch.stack(columns, dim=1), torch.stack(present, dim=1)
