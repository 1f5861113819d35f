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
    "roam-top1": ({"routing": "top1"}, 1),
    "sinkhorn-moe": ({"model": "sinkhorn-moe"}, 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_training_step_synchronises_only_where_top1_routing_must(case: str,
                                                                  kg: MultimodalKG) -> None:
    settings, allowed = dict(CASES[case][0]), CASES[case][1]
    name = settings.pop("model", "roam")
    config = resolve_config(name, dim=8, relation_dim=8, expert_hidden=8, cost_hidden=8,
                            num_groups=3, critic_queries=8, **settings)
    model = build_model(config, kg.num_entities, 2 * kg.num_relations, kg.modalities).train()
    if config.routing == "anneal":
        model.begin_epoch(1, 10)                                 # soft at first
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
