"""A training step makes no host synchronisation on the model side, except the one a top-1
routed step needs (docs/benchmarks.md). Counted by patching the calls that make a GPU wait:
``Tensor.item / tolist / numpy / cpu / __bool__ / __int__ / __float__ / __index__`` and
``torch.unique`` (its output size depends on the data), during forward + loss + backward of a
1-N batch given with its distinct relations, as the trainer gives it (training/regimes.py)."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model import build_model, resolve_config, total_loss
from roam_graph.model.interaction import relation_groups

METHODS = ("item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__")


@contextmanager
def counted_syncs() -> Iterator[collections.Counter]:
    seen: collections.Counter = collections.Counter()
    originals = {name: getattr(torch.Tensor, name) for name in METHODS}
    unique = torch.unique

    def counting(name: str, call):  # noqa: ANN001, ANN202
        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            seen[name] += 1
            return call(*args, **kwargs)
        return wrapper

    for name, call in originals.items():
        setattr(torch.Tensor, name, counting(name, call))
    torch.unique = counting("unique", unique)
    try:
        yield seen
    finally:
        for name, call in originals.items():
            setattr(torch.Tensor, name, call)
        torch.unique = unique


#: settings -> the syncs a step may make: top-1 routing reads the groups' sizes once, to give
#: each group one matrix product (sizes known on the device only would cost O x the FLOPs)
CASES = {
    "tucker": ({"model": "tucker"}, 0),
    "momok": ({"model": "momok"}, 0),
    "roam-soft": ({"routing": "soft"}, 0),
    "roam-anneal": ({"routing": "anneal"}, 0),
    "roam-top1": ({"routing": "top1", "top1_scoring": "grouped"}, 1),
    "roam-top1-dense": ({"routing": "top1", "top1_scoring": "dense"}, 0),
    "roam-anneal-hard-dense": ({"routing": "anneal", "top1_scoring": "dense"}, 0),
    "sinkhorn-moe": ({"model": "sinkhorn-moe", "top1_scoring": "grouped"}, 1),
    "sinkhorn-moe-dense": ({"model": "sinkhorn-moe", "top1_scoring": "dense"}, 0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_training_step_synchronises_only_where_top1_routing_must(case: str,
                                                                  kg: MultimodalKG) -> None:
    settings, allowed = dict(CASES[case][0]), CASES[case][1]
    name = settings.pop("model", "roam")
    config = resolve_config(name, dim=8, relation_dim=8, expert_hidden=8, cost_hidden=8,
                            num_groups=3, critic_queries=8, **settings)
    model = build_model(config, kg.num_entities, 2 * kg.num_relations, kg.modalities).train()
    if config.routing == "anneal":                               # soft at first, then hard
        model.begin_epoch(10 if case.endswith("hard-dense") else 1, 10)
    heads = torch.arange(16)
    relations = torch.arange(16) % (2 * kg.num_relations)
    groups = relation_groups(relations)                          # on the host, by the sampler
    targets = torch.zeros(16, kg.num_entities)
    targets[:, 0] = 1.0
    with counted_syncs() as seen:
        output = model(heads, relations, groups=groups)
        loss, _ = total_loss(output, targets, config.ot_weight, "softmax", config.ot_epsilon)
        loss.backward()
    assert sum(seen.values()) == allowed, dict(seen)


@pytest.mark.parametrize("model_name", ["roam", "sinkhorn-moe"])
def test_dense_top1_scoring_gives_the_grouped_scores_and_gradients(model_name: str,
                                                                   kg: MultimodalKG) -> None:
    """``top1_scoring: dense`` scores every query under every group and keeps its own: the
    scores, the loss and every gradient are those of one product per group."""
    found = {}
    for scoring in ("grouped", "dense"):
        config = resolve_config(model_name, dim=8, relation_dim=8, expert_hidden=8,
                                cost_hidden=8, num_groups=3, critic_queries=8, routing="top1",
                                top1_scoring=scoring)
        torch.manual_seed(0)
        model = build_model(config, kg.num_entities, 2 * kg.num_relations, kg.modalities,
                            seed=0).train()
        heads, relations = torch.arange(16), torch.arange(16) % (2 * kg.num_relations)
        targets = torch.zeros(16, kg.num_entities)
        targets[:, 0] = 1.0
        torch.manual_seed(1)                                     # the same attention noise
        output = model(heads, relations)
        loss, _ = total_loss(output, targets, config.ot_weight, "softmax", config.ot_epsilon)
        loss.backward()
        found[scoring] = (output.scores.detach(), output.modality_weights, loss.detach(),
                          {n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    (scores, weights, loss, grads), (d_scores, d_weights, d_loss, d_grads) = found.values()
    assert len(set(output.selected[:, 0].tolist())) > 1         # more than one group in use
    assert torch.allclose(d_scores, scores, atol=1e-6) and torch.allclose(d_loss, loss)
    assert torch.allclose(d_weights, weights, atol=1e-6)
    assert grads.keys() == d_grads.keys()
    assert all(torch.allclose(d_grads[n], grads[n], atol=1e-6) for n in grads)
