"""Filtered link-prediction evaluation: ranks with tie handling, metrics, the evaluator."""

from roam_graph.evaluation.chunked import CandidateScorer, ModelScorer
from roam_graph.evaluation.evaluator import (
    DIRECTIONS,
    EvaluationResult,
    build_filter,
    evaluate,
)
from roam_graph.evaluation.metrics import (
    CATEGORIES,
    HITS_AT,
    METRIC_KEYS,
    UNSEEN,
    category_metrics,
    grouped_rank_metrics,
    rank_metrics,
    relation_cardinality,
    relation_categories,
    relation_metrics,
)
from roam_graph.evaluation.ranking import (
    TIE_MODES,
    NaNScoreError,
    RankTriple,
    check_no_nan,
    filtered_ranks,
)

__all__ = [
    "CATEGORIES", "DIRECTIONS", "HITS_AT", "METRIC_KEYS", "TIE_MODES", "UNSEEN",
    "CandidateScorer", "EvaluationResult", "ModelScorer", "NaNScoreError", "RankTriple",
    "build_filter", "category_metrics", "check_no_nan", "evaluate", "filtered_ranks",
    "grouped_rank_metrics", "rank_metrics", "relation_cardinality", "relation_categories",
    "relation_metrics",
]
