"""Relation-aware attention over modalities inside an expert group (Eq. 3-4).

Eq. 4 reads ``w_m = softmax_m((U_m([v_im || r]) + delta_m) / tau)``. ``U_m`` is linear, so its
logit splits into an entity term ``a_m . v_im`` and a relation term ``b_m . r + c_m``. Computing
the two terms separately is what lets candidate entities be encoded under every query's relation
without a ``[batch x entities x dim]`` tensor (roam.py). ``delta_m`` is read as learnable Gaussian
noise in the noisy-gating sense (Cheng et al. 2020 / Shazeer et al. 2017): ``delta_m = eps *
softplus(U'_m([v || r]))`` with ``eps ~ N(0, 1)``, applied in training only, on the query side.
The ``exp`` printed inside ``S(.)`` in Eq. 4 is read as part of the softmax.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ModalityAttention(nn.Module):
    def __init__(self, num_modalities: int, dim: int, relation_dim: int, temperature: float,
                 noise: bool, use_relation: bool, may_lack_all: bool = True) -> None:
        super().__init__()
        self.temperature = temperature
        # whether an entity can lack every modality (known when the model is built): only
        # then do weights need zeroing, and deciding that per step would be a host sync
        self.may_lack_all = may_lack_all
        self.noise = noise
        self.use_relation = use_relation
        self.entity_weight = nn.Parameter(torch.randn(num_modalities, dim) * dim ** -0.5)
        self.relation_weight = nn.Parameter(
            torch.randn(num_modalities, relation_dim) * relation_dim ** -0.5)
        self.bias = nn.Parameter(torch.zeros(num_modalities))
        if noise:
            self.noise_entity = nn.Parameter(torch.zeros(num_modalities, dim))
            self.noise_relation = nn.Parameter(torch.zeros(num_modalities, relation_dim))
            self.noise_bias = nn.Parameter(torch.full((num_modalities,), -2.0))

    def entity_terms(self, experts_out: torch.Tensor) -> torch.Tensor:
        """``a_m . v`` for expert outputs ``[n, M, O, d]`` -> ``[n, M, O]``."""
        return torch.einsum("nmod,md->nmo", experts_out, self.entity_weight)

    def relation_terms(self, relation_vectors: torch.Tensor,
                       use_relation: bool | None = None) -> torch.Tensor:
        """``b_m . r + c_m`` for relation embeddings ``[B, d_r]`` -> ``[B, M]``."""
        use = self.use_relation if use_relation is None else use_relation
        if not use:
            return self.bias.expand(relation_vectors.shape[0], -1)
        return relation_vectors @ self.relation_weight.T + self.bias

    def noise_terms(self, experts_out: torch.Tensor, relation_vectors: torch.Tensor
                    ) -> torch.Tensor:
        """Sampled ``delta_m`` for query-side logits ``[B, M, O]`` (zero outside training)."""
        if not (self.noise and self.training):
            return experts_out.new_zeros(experts_out.shape[:3])
        relation_part = (relation_vectors @ self.noise_relation.T if self.use_relation  # no leak
                         else relation_vectors.new_zeros(relation_vectors.shape[0], 1))
        scale = F.softplus(torch.einsum("nmod,md->nmo", experts_out, self.noise_entity)
                           + (relation_part + self.noise_bias)[:, :, None])
        return torch.randn_like(scale) * scale

    def weights(self, logits: torch.Tensor, present: torch.Tensor, dim: int) -> torch.Tensor:
        """Masked softmax over modalities (Eq. 4); absent modalities get exactly zero weight.
        An entity with no modality at all gets all-zero weights (a zero representation)."""
        lowest = torch.finfo(logits.dtype).min  # finite: no NaN for all-absent rows
        weights = torch.softmax((logits / self.temperature).masked_fill(~present, lowest), dim=dim)
        if self.may_lack_all:
            weights = weights * present.any(dim=dim, keepdim=True)
        return weights

    def candidate_weights(self, entity_terms: torch.Tensor, relation_terms: torch.Tensor,
                          present: torch.Tensor) -> torch.Tensor:
        """``weights(entity_terms[None] + relation_terms[:, :, None], present[None], dim=1)``
        for every query and candidate: ``entity_terms [M, N]``, ``relation_terms [b, M]``,
        ``present [M, N]`` -> ``[b, M, N]``. The temperature and the mask are applied to the
        small operands, so the ``[b, M, N]`` tensor sees one sum and the softmax (the general
        form makes five passes over it). Absent modalities sit at half the lowest float, which
        stays finite after a relation term is added, so they weigh exactly zero as there."""
        hidden = torch.finfo(entity_terms.dtype).min / 2
        entity = (entity_terms / self.temperature).masked_fill(~present, hidden)
        weights = torch.softmax(entity.unsqueeze(0)
                                + (relation_terms / self.temperature).unsqueeze(2), dim=1)
        if self.may_lack_all:
            weights = weights * present.any(dim=0)
        return weights

