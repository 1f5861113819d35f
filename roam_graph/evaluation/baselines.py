"""Reference points for reported metrics: what a scorer with no knowledge obtains."""

from __future__ import annotations

import torch

from roam_graph.evaluation.evaluator import evaluate
from roam_graph.graph.answers import AnswerIndex
from roam_graph.graph.mmkg import MultimodalKG


def random_scorer_metrics(kg: MultimodalKG, known: AnswerIndex, split: str = "test",
                          seed: int = 0, batch_size: int = 1024) -> dict[str, float]:
    """Headline metrics of i.i.d. uniform random scores under the same filter and tie handling
    (printed next to a model's results, so "far above random" is a measured statement)."""
    generator = torch.Generator().manual_seed(seed)

    def score(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        return torch.rand(len(heads), kg.num_entities, generator=generator)

    return evaluate(score, kg.triples(split), known, kg.num_relations,
                    batch_size=batch_size).headline
