"""Rank-based metrics, overall, per relation and per relation category.

For ranks ``r_1..r_n`` (any tie mode, see ``ranking``):

- ``mr``      = mean rank, (1/n) Σ r_i;
- ``mrr``     = mean reciprocal rank, (1/n) Σ 1/r_i;
- ``hits@k``  = (1/n) #{i : r_i <= k}, for k in 1, 3, 10, compared with the rank as given. For
  realistic ranks, which can be ``x.5`` (``x`` is an integer), a rank of 3.5 is therefore not a hit
  at 3: it is the mean of a hit and a miss. (Hits@k of the realistic rank is not the expected
  Hits@k under random tie breaking; the latter lies between the optimistic and pessimistic Hits@k.)

Relation categories follow Bordes et al. (2013), "Translating Embeddings for Modeling
Multi-relational Data", §4.2: on the training triples of relation ``r``, ``tph`` is the mean number
of tails per distinct head and ``hpt`` the mean number of heads per distinct tail (duplicate triples
count once); with threshold 1.5, tph < 1.5 and hpt < 1.5 is 1-1, tph >= 1.5 and hpt < 1.5 is 1-N,
tph < 1.5 and hpt >= 1.5 is N-1, both >= 1.5 is N-N.
"""

from __future__ import annotations

import torch

HITS_AT = (1, 3, 10)
HITS_KEYS = tuple(f"hits@{k}" for k in HITS_AT)
METRIC_KEYS = ("mr", "mrr", *HITS_KEYS)
#: The metric keys in the order reports list them: MRR first (the paper's headline), then MR.
HEADLINE_KEYS = ("mrr", "mr", *HITS_KEYS)
#: The columns of the paper's result tables (Table 2 and the ablations), in %: MR is not one.
TABLE_KEYS = ("mrr", *HITS_KEYS)
CATEGORIES = ("1-1", "1-N", "N-1", "N-N")
CATEGORY_THRESHOLD = 1.5
#: Category id of relations without training triples (tph and hpt undefined).
UNSEEN = -1


def rank_metrics(ranks: torch.Tensor) -> dict[str, float]:
    """``mr``, ``mrr``, ``hits@1``, ``hits@3``, ``hits@10`` of 1-d ranks (module docstring)."""
    _check_ranks(ranks)
    if len(ranks) == 0:
        raise ValueError("rank_metrics needs at least one rank")
    metrics = grouped_rank_metrics(ranks, torch.zeros(len(ranks), dtype=torch.int64), 1)[0]
    del metrics["count"]
    return metrics


def grouped_rank_metrics(ranks: torch.Tensor, groups: torch.Tensor, num_groups: int
                         ) -> dict[int, dict[str, float]]:
    """Metrics of the ranks of each group in one vectorised pass (``bincount`` sums).

    ``groups`` holds a group id in ``[0, num_groups)`` per rank; negative ids are left out. Groups
    without ranks are omitted from the result. Each group's dict has the ``METRIC_KEYS`` plus
    ``count``, its number of ranks."""
    _check_ranks(ranks)
    if groups.shape != ranks.shape:
        raise ValueError(f"groups {tuple(groups.shape)} must match ranks {tuple(ranks.shape)}")
    ranks = ranks.detach().to("cpu", torch.float64)
    groups = groups.detach().to("cpu", torch.int64)
    if len(groups) and int(groups.max()) >= num_groups:
        raise ValueError(f"group ids must be < num_groups = {num_groups}, got {int(groups.max())}")
    kept = groups >= 0
    ranks, groups = ranks[kept], groups[kept]
    columns = [torch.ones_like(ranks), ranks, 1.0 / ranks,
               *((ranks <= k).to(torch.float64) for k in HITS_AT)]
    sums = torch.stack([torch.bincount(groups, weights=c, minlength=num_groups) for c in columns])
    counts = sums[0]
    present = (counts > 0).nonzero().flatten().tolist()
    means = (sums[1:] / counts.clamp(min=1)).T.tolist()   # [num_groups, len(METRIC_KEYS)]
    return {g: {**dict(zip(METRIC_KEYS, means[g], strict=True)), "count": int(counts[g])}
            for g in present}


def relation_cardinality(train_triples: torch.Tensor, num_relations: int
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 ``(tph, hpt)`` ``[num_relations]`` from ``(h, r, t)`` triples; NaN for relations
    without triples. tph = distinct (h, t) pairs / distinct heads, hpt = pairs / distinct tails."""
    if train_triples.dim() != 2 or train_triples.shape[1] != 3:
        raise ValueError(f"triples must be [n, 3], got shape {tuple(train_triples.shape)}")
    triples = train_triples.to("cpu", torch.int64)
    heads, relations, tails = triples.unbind(1)
    if len(relations) and (int(relations.min()) < 0 or int(relations.max()) >= num_relations):
        raise ValueError(f"relation ids must lie in [0, {num_relations}) (pass triples without "
                         f"reciprocals), got up to {int(relations.max())}")
    num_entities = int(max(heads.max(), tails.max())) + 1 if len(triples) else 1
    pairs = _distinct_per_relation(relations, heads * num_entities + tails, num_relations)
    distinct_heads = _distinct_per_relation(relations, heads, num_relations)
    distinct_tails = _distinct_per_relation(relations, tails, num_relations)
    return pairs / distinct_heads, pairs / distinct_tails   # 0 / 0 = NaN for unseen relations


def relation_categories(train_triples: torch.Tensor, num_relations: int) -> torch.Tensor:
    """int64 ``[num_relations]`` index into ``CATEGORIES`` per relation (Bordes et al. 2013);
    ``UNSEEN`` (-1) for relations without training triples."""
    tph, hpt = relation_cardinality(train_triples, num_relations)
    category = (tph >= CATEGORY_THRESHOLD).to(torch.int64) + 2 * (hpt >= CATEGORY_THRESHOLD)
    return torch.where(torch.isnan(tph), torch.full_like(category, UNSEEN), category)


def relation_metrics(ranks: torch.Tensor, relations: torch.Tensor, num_relations: int
                     ) -> dict[int, dict[str, float]]:
    """Metrics per relation id (relations without queries are omitted)."""
    return grouped_rank_metrics(ranks, relations, num_relations)


def category_metrics(ranks: torch.Tensor, relations: torch.Tensor, categories: torch.Tensor
                     ) -> dict[str, dict[str, float]]:
    """Metrics per relation category name; ``categories`` maps relation id -> category id (as
    ``relation_categories`` returns). Queries of ``UNSEEN`` relations are left out."""
    query_category = categories.to("cpu", torch.int64)[relations.to("cpu", torch.int64)]
    grouped = grouped_rank_metrics(ranks, query_category, len(CATEGORIES))
    return {CATEGORIES[c]: metrics for c, metrics in grouped.items()}


def _distinct_per_relation(relations: torch.Tensor, values: torch.Tensor, num_relations: int
                           ) -> torch.Tensor:
    """Number of distinct ``values`` per relation, float64 ``[num_relations]``."""
    if len(values) == 0:
        return torch.zeros(num_relations, dtype=torch.float64)
    span = int(values.max()) + 1
    unique = torch.unique(relations * span + values)
    return torch.bincount(unique // span, minlength=num_relations).to(torch.float64)


def _check_ranks(ranks: torch.Tensor) -> None:
    if ranks.dim() != 1:
        raise ValueError(f"ranks must be 1-d, got shape {tuple(ranks.shape)}")
    if len(ranks) and bool((ranks < 1).any()):
        raise ValueError("ranks must be >= 1")
