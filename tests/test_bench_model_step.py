"""bench/model_step.py counts the FLOPs of a step instead of estimating them: every matrix
product, forward and backward, including the feature adapters over all entities."""

from __future__ import annotations

import pytest
from pipeline_helpers import load_bench

from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model import build_model, resolve_config
from roam_graph.sampling import OneToNSampler


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201 (a module loaded from its file)
    return load_bench("model_step")


def test_a_tucker_step_counts_its_scoring_forward_and_backward(bench, kg: MultimodalKG) -> None:
    dim, batch_size = 16, 32
    config = resolve_config("tucker", dim=dim, relation_dim=dim)
    model = build_model(config, kg.num_entities, 2 * kg.num_relations, kg.modalities).train()
    batch = next(iter(OneToNSampler.from_kg(kg, batch_size)))
    flops = bench.counted_flops(bench.make_step(model, (0.0, 0.05)), batch)
    scoring = 2 * batch_size * dim * kg.num_entities          # [B, d] x [d, N], forward
    core = 2 * dim * dim * dim                                # one relation's W_r, forward
    query = 2 * batch_size * dim * dim                        # x W_r, forward
    # backward: the gradients of both factors of every product (2x forward)
    assert flops >= 3 * (scoring + core + query)
    assert flops <= 3 * (scoring + 2 * kg.num_relations * core + query) * 1.01


def test_the_adapters_over_all_entities_are_counted(bench, kg: MultimodalKG) -> None:
    features = bench.random_features(kg)                      # 4096-d image, 768-d text
    config = resolve_config("roam", dim=8, relation_dim=8, expert_hidden=8, cost_hidden=8,
                            num_groups=2)
    model = build_model(config, kg.num_entities, 2 * kg.num_relations, features).train()
    batch = next(iter(OneToNSampler.from_kg(kg, 16)))
    flops = bench.counted_flops(bench.make_step(model, (0.0, 0.05)), batch)
    adapters = 2 * kg.num_entities * (4096 + 768) * 8         # forward over all N entities
    assert flops >= 2 * adapters                              # + the weights' gradient
