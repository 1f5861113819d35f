"""Filtered ranks of target entities against all entities, with explicit tie handling.

For one query with scores ``s`` over all ``N`` entities, target ``t`` and a set ``F`` of other known
true answers (the filter, Bordes et al. 2013), let ``C = {0..N-1} \\ (F ∪ {t})`` be the competing
candidates. Then (the three ranks of PyKEEN and LibKGE, Berrendorf et al. 2020, "Interpretable and
Fair Comparison of Link Prediction or Entity Alignment Methods"):

- optimistic  = 1 + #{c in C : s[c] >  s[t]}   (the target wins every tie),
- pessimistic = 1 + #{c in C : s[c] >= s[t]}   (the target loses every tie),
- realistic   = (optimistic + pessimistic) / 2 (the expected rank under random tie breaking).

Filtered entries neither count as better nor as tied; the target itself is never filtered, even when
it is listed in ``F``. So a constant scorer gets optimistic 1, pessimistic ``|C| + 1`` and
realistic ``(|C| + 2) / 2``, i.e. ``(N_c + 1) / 2`` with ``N_c = |C| + 1`` the candidates left
after filtering, target included.

How (no per-query loop, bounded memory): rows are processed in chunks of about ``_CHUNK_ELEMENTS``
scores. For each chunk the comparisons ``s > s[t]`` and ``s >= s[t]`` are written as float 0/1
masks into one reused buffer (on CPU about twice as fast as making and summing bool masks), the
known answers are zeroed in the masks by index (``index_fill_``), the target is set back in the
``>=`` mask, and the masks are summed. The sums are exact: every partial sum is an integer below
``2**24`` (float32 masks) or ``2**53`` (float64 masks, for rows of ``2**24`` entities or more).
The caller's scores are never modified, so this stays exact when the target scores ``-inf``,
where writing ``-inf`` into filtered scores would turn them into ties.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

TIE_MODES = ("optimistic", "pessimistic", "realistic")
#: Scores per chunk of rows on CPU (a 4 MB float32 mask, reused; see the module docstring). Other
#: devices take the whole block at once.
_CHUNK_ELEMENTS = 2**20


class RankTriple(NamedTuple):
    """float64 ranks ``[B]`` of the same queries under the three tie modes (module docstring)."""

    optimistic: torch.Tensor
    pessimistic: torch.Tensor
    realistic: torch.Tensor


class NaNScoreError(ValueError):
    """A score block holds NaN; ``row`` is the first offending query row of the block."""

    def __init__(self, row: int, message: str | None = None) -> None:
        super().__init__(message or f"score row {row} contains NaN: cannot rank its candidates")
        self.row = row


def check_no_nan(scores: torch.Tensor, row_sums: torch.Tensor | None = None) -> None:
    """Raise ``NaNScoreError`` naming the first row of ``scores`` ``[B, N]`` that holds a NaN.

    A NaN-free row has a NaN sum only when it holds both ``+inf`` and ``-inf``, so one reduction
    (``row_sums``, computed here when not given) finds the suspect rows and only those are checked
    element by element."""
    sums = scores.sum(dim=1) if row_sums is None else row_sums
    suspects = torch.isnan(sums).nonzero().flatten()
    if len(suspects):
        bad = torch.isnan(scores[suspects]).any(dim=1)
        if bool(bad.any()):
            raise NaNScoreError(int(suspects[bad][0]))


def filtered_ranks(scores: torch.Tensor, targets: torch.Tensor, filter_rows: torch.Tensor,
                   filter_cols: torch.Tensor) -> RankTriple:
    """Filtered optimistic, pessimistic and realistic ranks of ``targets`` (module docstring).

    Args:
        scores: float ``[B, N]``, higher is better; row ``i`` scores all entities for query ``i``.
        targets: int ``[B]``, the entity to rank in each row.
        filter_rows, filter_cols: int ``[nnz]`` COO of known true answers (``(row, entity)``) to
            exclude; pairs naming a row's own target are ignored, repeated pairs count once.
            ``AnswerIndex.answers`` returns exactly this (sorted by row; other input is sorted).

    Returns:
        ``RankTriple`` of float64 ``[B]`` tensors on the device of ``scores``.

    Raises:
        ValueError: on wrong shapes or out-of-range indices; ``NaNScoreError`` (a ``ValueError``)
            naming the first row whose scores contain NaN.
    """
    _check_shapes(scores, targets, filter_rows, filter_cols)
    num_queries, num_entities = scores.shape
    device = scores.device
    targets = targets.to(device=device, dtype=torch.int64)
    _check_range(targets, num_entities, "targets")
    _check_range(filter_rows, num_queries, "filter_rows")
    _check_range(filter_cols, num_entities, "filter_cols")
    flat = (filter_rows.to(device=device, dtype=torch.int64) * num_entities
            + filter_cols.to(device=device, dtype=torch.int64))   # index into scores.view(-1)
    if len(flat) > 1 and not bool((flat[1:] >= flat[:-1]).all()):
        flat = torch.sort(flat).values

    greater, greater_equal = _filtered_counts(scores, targets, flat)
    optimistic = greater.to(torch.float64) + 1.0
    pessimistic = greater_equal.to(torch.float64)          # ``>=`` counted the target: no + 1
    return RankTriple(optimistic, pessimistic, (optimistic + pessimistic) / 2.0)


def _filtered_counts(scores: torch.Tensor, targets: torch.Tensor, flat: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the unfiltered entities scoring ``>`` and ``>=`` the target (the target
    counted in ``>=``); ``flat``: sorted known answers as indices into ``scores.view(-1)``.
    Rows go in blocks that fit in cache on a CPU, one mask buffer reused; NaN rows raise."""
    num_queries, num_entities = scores.shape
    device = scores.device
    target_scores = scores.gather(1, targets[:, None])                            # [B, 1]
    step = max(_CHUNK_ELEMENTS // num_entities if device.type == "cpu" else num_queries, 1)
    mask_dtype = torch.float32 if num_entities < 2**24 else torch.float64
    mask = torch.empty(min(step, num_queries), num_entities, dtype=mask_dtype, device=device)
    starts = range(0, num_queries, step)
    bounds = torch.searchsorted(flat, torch.tensor([*starts, num_queries], device=device)
                                * num_entities).tolist()
    row_sums = torch.empty(num_queries, dtype=scores.dtype, device=device)
    greater = torch.empty(num_queries, dtype=torch.int64, device=device)
    greater_equal = torch.empty_like(greater)
    for chunk, start in enumerate(starts):
        rows = slice(start, start + step)
        block, target = scores[rows], target_scores[rows]
        block_mask = mask[:len(block)]
        known = flat[bounds[chunk]:bounds[chunk + 1]] - start * num_entities
        row_sums[rows] = block.sum(dim=1)                  # for the NaN check, block in cache
        torch.gt(block, target, out=block_mask)            # the target is never > itself
        block_mask.view(-1).index_fill_(0, known, 0)
        greater[rows] = block_mask.sum(dim=1)
        torch.ge(block, target, out=block_mask)
        block_mask.view(-1).index_fill_(0, known, 0)
        block_mask.scatter_(1, targets[rows, None], 1)     # a listed target is not filtered
        greater_equal[rows] = block_mask.sum(dim=1)
    check_no_nan(scores, row_sums)
    return greater, greater_equal


def _check_shapes(scores: torch.Tensor, targets: torch.Tensor, filter_rows: torch.Tensor,
                  filter_cols: torch.Tensor) -> None:
    if scores.dim() != 2:
        raise ValueError(f"scores must be [B, N] (one row per query), got shape "
                         f"{tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise ValueError(f"scores must be floating point, got {scores.dtype}")
    if targets.shape != scores.shape[:1]:
        raise ValueError(f"targets must be [B] = [{scores.shape[0]}] to match scores "
                         f"{tuple(scores.shape)}, got shape {tuple(targets.shape)}")
    if filter_rows.dim() != 1 or filter_rows.shape != filter_cols.shape:
        raise ValueError(f"filter_rows and filter_cols must be 1-d of equal length, got "
                         f"{tuple(filter_rows.shape)} and {tuple(filter_cols.shape)}")


def _check_range(index: torch.Tensor, size: int, name: str) -> None:
    if index.is_floating_point():
        raise ValueError(f"{name} must be an integer tensor, got {index.dtype}")
    if len(index) and (int(index.min()) < 0 or int(index.max()) >= size):
        raise ValueError(f"{name} must lie in [0, {size}), got values in "
                         f"[{int(index.min())}, {int(index.max())}]")
