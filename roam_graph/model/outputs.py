"""What models return, and the per-entity encoding that evaluation computes once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from roam_graph.model.routing import Routing


@dataclass(frozen=True)
class CandidateEncoding:
    """Experts' outputs for a set of entities under every option (ROAM), or plain embeddings.

    raw: ``[n, M, d]`` adapted modality inputs; experts_out: ``[n, M, O, d]`` (Eq. 2);
    entity_terms: ``[n, M, O]`` the entity half of the attention logits (Eq. 4);
    present: ``[n, M]`` modality presence; ids: the entity ids (None = all entities)."""
    raw: torch.Tensor
    experts_out: torch.Tensor
    entity_terms: torch.Tensor
    present: torch.Tensor
    ids: torch.Tensor | None

    @cached_property
    def by_option(self) -> tuple[torch.Tensor, ...]:
        """``experts_out`` as one ``[M, n, d]`` block per option, contiguous, split once per
        encoding. Slicing ``experts_out[:, :, o]`` for each option instead would, in backward,
        allocate and zero a gradient of the whole ``[n, M, O, d]`` tensor per option (measured:
        a tenth of a DB15K step at dim 64; docs/benchmarks.md)."""
        return self.experts_out.permute(2, 1, 0, 3).contiguous().unbind(0)


@dataclass(frozen=True)
class RoutingSignal:
    """What the critic (``routing.routing_critic_loss``) needs for the first S queries of a
    training batch: their routing cost ``[S, G, O]`` (with gradient into phi and g) and their
    scores under every option ``[S, G, O, C]`` (no gradient)."""
    cost: torch.Tensor
    option_scores: torch.Tensor


@dataclass(frozen=True)
class ModelOutput:
    """scores: ``[B, N]`` or ``[B, C]`` (higher = more plausible), used for ranking;
    head_scores: the score tensors the triple loss is applied to (one, or one per head for
    multi-head baselines such as MoMoK); ot_loss: L_OT of Eq. 11 (0 without routing);
    routing / selected / modality_weights: introspection (None for models without routing);
    routing_signal: the critic's inputs (training with ``cost_signal: critic`` only)."""
    scores: torch.Tensor
    head_scores: tuple[torch.Tensor, ...]
    ot_loss: torch.Tensor
    routing: Routing | None = None
    selected: torch.Tensor | None = None
    modality_weights: torch.Tensor | None = None
    routing_signal: RoutingSignal | None = None


def select_entities(encoding: CandidateEncoding, ids: torch.Tensor) -> CandidateEncoding:
    """Rows ``ids`` of an encoding of all entities (``encoding.ids`` None)."""
    return CandidateEncoding(encoding.raw[ids], encoding.experts_out[ids],
                             encoding.entity_terms[ids], encoding.present[ids], ids)


def detach_encoding(encoding: CandidateEncoding) -> CandidateEncoding:
    """The encoding cut from the graph (the routing cost reads it without training it)."""
    return CandidateEncoding(encoding.raw.detach(), encoding.experts_out.detach(),
                             encoding.entity_terms.detach(), encoding.present, encoding.ids)
