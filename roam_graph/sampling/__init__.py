"""Training batches: shuffled edge batches, negative sampling, 1-N batches, subgraph sampling.

Conventions (docs/sampling.md): every sampler is a pure function of ``(seed, epoch, batch)``,
resumable from ``state_dict()``; the model only scores tails of queries ``(head, relation')``
over ``2R`` relations, head prediction being the reciprocal relation ``r + R``.
"""

from roam_graph.sampling.candidates import (
    CandidateDistribution,
    DegreeWeighted,
    TypeConstrained,
    UniformEntities,
    entity_degrees,
)
from roam_graph.sampling.edges import BatchTransform, EdgeBatchSampler
from roam_graph.sampling.epochs import ShuffledBatches, derive_seed, seeded_generator
from roam_graph.sampling.negatives import (
    STRATEGIES,
    NegativeBatch,
    NegativeSampler,
    bernoulli_head_probability,
    make_negative_sampler,
)
from roam_graph.sampling.one_to_n import OneToNBatch, OneToNSampler, dense_targets
from roam_graph.sampling.subgraph import (
    neighbourhood_edges,
    random_entities,
    sample_edge_fraction,
)

__all__ = [
    "STRATEGIES",
    "BatchTransform",
    "CandidateDistribution",
    "DegreeWeighted",
    "EdgeBatchSampler",
    "NegativeBatch",
    "NegativeSampler",
    "OneToNBatch",
    "OneToNSampler",
    "ShuffledBatches",
    "TypeConstrained",
    "UniformEntities",
    "bernoulli_head_probability",
    "dense_targets",
    "derive_seed",
    "entity_degrees",
    "make_negative_sampler",
    "neighbourhood_edges",
    "random_entities",
    "sample_edge_fraction",
    "seeded_generator",
]
