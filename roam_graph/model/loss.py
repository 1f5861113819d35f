"""The training objective (Eq. 9-11), and the critic term that trains the routing cost."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from roam_graph.model.outputs import ModelOutput
from roam_graph.model.routing import routing_critic_loss


def dot_last(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``sum_c scores[..., c] * targets[..., c]`` with ``targets`` broadcast to ``scores``
    (one einsum: no product tensor, no expanded copy of the targets)."""
    return torch.einsum("...c,...c->...", scores, targets)


def bce_per_query(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L_triple of Eq. 10 per query ``[..., C] -> [...]``: binary cross-entropy on logits,
    averaged over the query's scored candidates. Computed as ``mean(softplus(s)) - mean(y s)``,
    which is the logistic loss ``-[y log sigma(s) + (1 - y) log(1 - sigma(s))]`` rewritten: one
    transcendental pass over the scores instead of torch's composite kernel (3.5x faster forward,
    1.2x forward + backward over ``[1024, 12842]``; docs/benchmarks.md). ``targets``
    broadcast to ``scores``."""
    # a sum, then / C: the backward of a mean would write a divided copy of the whole gradient
    return (F.softplus(scores).sum(dim=-1) - dot_last(scores, targets)) / scores.shape[-1]


def softmax_per_query(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the softmax over candidates against the normalised targets (LibKGE's
    1vsAll / KvsAll with CE), per query. Not the paper's Eq. 10, but it learns far faster early
    on: with 1-N BCE the first epochs mostly push every score down (docs/training.md).
    ``targets`` broadcast to ``scores``."""
    distribution = targets / targets.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return -dot_last(torch.log_softmax(scores, dim=-1), distribution)


PER_QUERY_LOSSES = {"bce": bce_per_query, "softmax": softmax_per_query}
LOSS_NAMES: tuple[str, ...] = tuple(PER_QUERY_LOSSES)


def triple_loss(scores: torch.Tensor, targets: torch.Tensor, loss: str = "bce") -> torch.Tensor:
    """The batch's triple loss: the per-query loss averaged over queries. For BCE this is the
    mean over all scored pairs (Eq. 10 sums; the mean keeps the scale independent of batch size
    and N; with Adam the difference is a learning-rate rescaling)."""
    if loss not in PER_QUERY_LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSS_NAMES)}")
    return PER_QUERY_LOSSES[loss](scores.float(), targets).mean()   # fp32 under autocast


def critic_loss(output: ModelOutput, targets: torch.Tensor, epsilon: float, loss: str
                ) -> torch.Tensor:
    """``routing_critic_loss`` on the batch's first S queries: each option's loss is the
    training loss of the query's scores under that option."""
    signal = output.routing_signal
    if signal is None:
        return output.ot_loss.new_zeros(())
    rows = signal.cost.shape[0]
    scores = signal.option_scores.float()
    option_losses = PER_QUERY_LOSSES[loss](scores, targets[:rows, None, None, :].float())
    return routing_critic_loss(signal.cost, option_losses, epsilon)


def total_loss(output: ModelOutput, targets: torch.Tensor, ot_weight: float,
               loss: str = "bce", epsilon: float = 0.05
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_total = L_triple + lambda * L_OT`` (Eq. 9), plus the critic term when the model
    returns a routing signal (``cost_signal: critic``; it trains phi and g only, so its weight
    does not matter under Adam and is 1). Multi-head models sum L_triple over heads. Under the
    critic signal L_OT carries no gradient (the plan is solved on a detached cost): it is the
    plan's expected centred cost, logged.

    Returns the loss and its detached parts (for logging; no host sync here: the caller
    decides when to read them)."""
    triple = sum(triple_loss(scores, targets, loss) for scores in output.head_scores)
    critic = critic_loss(output, targets, epsilon, loss)
    total = triple + ot_weight * output.ot_loss + critic
    return total, {"triple": triple.detach(), "ot": output.ot_loss.detach(),
                   "critic": critic.detach()}
