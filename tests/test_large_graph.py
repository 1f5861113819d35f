"""Large-graph mode: sparse entity gradients with SparseAdam, candidate-chunked evaluation with
the same ranks, checkpoints that resume bit-exactly, and clear errors for conflicting options."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from roam_graph.data.errors import DataError
from roam_graph.evaluation import ModelScorer, build_filter, evaluate
from roam_graph.evaluation.chunked import chunk_bounds
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model import build_model, resolve_config, total_loss
from roam_graph.sampling import EdgeBatchSampler, NegativeBatch, make_negative_sampler
from roam_graph.training.config import (
    LARGE_GRAPH_CANDIDATE_CHUNK,
    ExperimentConfig,
    TrainingConfig,
    load_config,
)
from roam_graph.training.optimisers import (
    CombinedOptimiser,
    clip_grad_norm,
    make_optimiser,
)
from roam_graph.training.regimes import NegativeSampling
from roam_graph.training.trainer import run_training

REPO = Path(__file__).resolve().parents[1]
KINDS = ("roam", "tucker", "momok", "sinkhorn-moe")
SMALL = {"dim": 16, "relation_dim": 16, "expert_hidden": 16, "cost_hidden": 16, "num_groups": 3}


def negative_inputs(batch: NegativeBatch) -> tuple[torch.Tensor, ...]:
    """``(heads, relations, candidates, targets)`` as the negative-sampling regime makes them."""
    inputs = NegativeSampling(ExperimentConfig()).inputs(batch, torch.device("cpu"))
    return inputs.heads, inputs.relations, inputs.candidates, inputs.targets


def quiet(_: str) -> None:
    pass


def negative_batches(kg: MultimodalKG, count: int, batch_size: int = 128) -> list:
    sampler = EdgeBatchSampler.from_kg(kg, batch_size, seed=0, transform=make_negative_sampler(
        "uniform", kg, 16, seed=0))
    sampler.set_epoch(1)
    return [batch for _, batch in zip(range(count), sampler, strict=False)]


def trained_model(kind: str, kg: MultimodalKG, large_graph: bool = True,
                  steps: int = 15) -> tuple[nn.Module, torch.optim.Optimizer, list[float]]:
    """A tiny model after ``steps`` negative-sampling steps, its optimiser and the losses."""
    torch.manual_seed(0)
    config = resolve_config(kind, **SMALL)
    model = build_model(config, kg.num_entities, 2 * kg.num_relations, kg.modalities)
    optimiser = make_optimiser(model, TrainingConfig(lr=0.01, regime="negative-sampling",
                                                     large_graph=large_graph))
    model.train()
    losses = []
    for batch in negative_batches(kg, steps):
        heads, relations, candidates, targets = negative_inputs(batch)
        loss, _ = total_loss(model(heads, relations, candidates), targets, config.ot_weight)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    return model.eval(), optimiser, losses


def unchunked(model: nn.Module, kg: MultimodalKG, batch_size: int):  # noqa: ANN201
    known = build_filter(kg)
    with torch.inference_mode():
        encoding = model.encode_entities()

        def score(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
            return model(heads, relations, candidate_encoding=encoding).scores.float()

        return evaluate(score, kg.triples("test"), known, kg.num_relations, batch_size=batch_size)


def same_ranks(a, b) -> bool:  # noqa: ANN001
    return all(torch.equal(a.ranks[mode][d], b.ranks[mode][d])
               for mode in a.ranks for d in ("tail", "head"))


# -- chunked evaluation ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_chunked_ranks_equal_unchunked_ranks_of_a_trained_model(kg: MultimodalKG,
                                                                kind: str) -> None:
    model, _, _ = trained_model(kind, kg)
    reference = unchunked(model, kg, batch_size=64)
    known = build_filter(kg)
    for chunk in (37, 200, None):
        result = evaluate(ModelScorer(model, torch.device("cpu")), kg.triples("test"), known,
                          kg.num_relations, batch_size=64, candidate_chunk=chunk)
        assert same_ranks(result, reference), (kind, chunk)
        assert result.headline == reference.headline


class TiedScorer:
    """Scores ``entity // 5`` for every query: ties in groups of five, exactly representable."""

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        return ids

    def score(self, heads: torch.Tensor, relations: torch.Tensor, encoding: torch.Tensor
              ) -> torch.Tensor:
        return (encoding // 5).float().expand(len(heads), -1)


def test_chunked_ranks_handle_ties_and_the_filter_like_the_unchunked_ranks(
        kg: MultimodalKG) -> None:
    known = build_filter(kg)
    entities = torch.arange(kg.num_entities)
    scorer = TiedScorer()

    def score_all(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        return scorer.score(heads, relations, entities)

    reference = evaluate(score_all, kg.triples("test"), known, kg.num_relations, batch_size=50)
    assert not torch.equal(reference.ranks["optimistic"]["tail"],
                           reference.ranks["pessimistic"]["tail"])  # the ties matter here
    for chunk in (1, 3, 64, kg.num_entities + 5):
        result = evaluate(scorer, kg.triples("test"), known, kg.num_relations, batch_size=50,
                          candidate_chunk=chunk)
        assert same_ranks(result, reference), chunk


def test_chunks_cover_all_entities_with_near_equal_widths() -> None:
    for count, chunk in ((10, 3), (480, 64), (7, 100), (1000, 1)):
        bounds = chunk_bounds(count, chunk)
        assert bounds[0][0] == 0 and bounds[-1][1] == count
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
        widths = [stop - start for start, stop in bounds]
        assert max(widths) <= chunk and max(widths) - min(widths) <= 1


def test_chunked_evaluation_names_a_nan_query(kg: MultimodalKG) -> None:
    class NaNForEntity7(TiedScorer):
        def score(self, heads: torch.Tensor, relations: torch.Tensor, encoding: torch.Tensor
                  ) -> torch.Tensor:
            scores = super().score(heads, relations, encoding).clone()
            scores[heads == 7] = float("nan")
            return scores

    triples = torch.tensor([[1, 0, 2], [7, 1, 3], [4, 2, 5]])
    with pytest.raises(ValueError, match=r"triple 1, tail query \(entity 7, relation 1"):
        evaluate(NaNForEntity7(), triples, build_filter(kg), kg.num_relations, batch_size=2,
                 candidate_chunk=100)


def test_candidate_chunk_needs_a_candidate_scorer(kg: MultimodalKG) -> None:
    def score_all(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(heads), kg.num_entities)

    with pytest.raises(ValueError, match="candidate_chunk needs a CandidateScorer"):
        evaluate(score_all, kg.triples("test"), build_filter(kg), kg.num_relations,
                 candidate_chunk=10)


# -- sparse training ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ("roam", "tucker", "momok"))
def test_a_step_gives_the_entity_table_a_sparse_gradient_of_the_batch_rows(
        kg: MultimodalKG, kind: str) -> None:
    torch.manual_seed(0)
    config = resolve_config(kind, **SMALL)
    model = build_model(config, kg.num_entities, 2 * kg.num_relations, kg.modalities).train()
    optimiser = make_optimiser(model, TrainingConfig(regime="negative-sampling",
                                                     large_graph=True))
    assert isinstance(optimiser, CombinedOptimiser) and set(optimiser.parts) == {"sparse",
                                                                                 "dense"}
    table = optimiser.parts["sparse"].param_groups[0]["params"][0]
    assert table.shape[0] == kg.num_entities
    batch = negative_batches(kg, 1, batch_size=32)[0]
    heads, relations, candidates, targets = negative_inputs(batch)
    total_loss(model(heads, relations, candidates), targets, config.ot_weight)[0].backward()
    assert table.grad.is_sparse
    rows = torch.unique(table.grad.coalesce().indices())
    touched = torch.unique(torch.cat([heads, candidates.reshape(-1)]))
    assert torch.isin(rows, touched).all() and len(rows) < kg.num_entities
    dense = [p for group in optimiser.parts["dense"].param_groups for p in group["params"]
             if p.grad is not None]
    assert dense and not any(p.grad.is_sparse for p in dense)


@pytest.mark.parametrize("kind", ("roam", "tucker"))
def test_sparse_training_lowers_the_loss(kg: MultimodalKG, kind: str) -> None:
    _, _, losses = trained_model(kind, kg, steps=30)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def test_dense_mode_keeps_plain_adam(kg: MultimodalKG) -> None:
    model = build_model(resolve_config("roam", **SMALL), kg.num_entities,
                        2 * kg.num_relations, kg.modalities)
    optimiser = make_optimiser(model, TrainingConfig())
    assert type(optimiser) is torch.optim.Adam
    assert not model.inputs.sparse and not model.inputs.structure.sparse


def test_optimiser_state_round_trips_through_a_file(kg: MultimodalKG) -> None:
    model, optimiser, _ = trained_model("roam", kg, steps=3)
    buffer = io.BytesIO()
    torch.save(optimiser.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    fresh_model = build_model(resolve_config("roam", **SMALL), kg.num_entities,
                              2 * kg.num_relations, kg.modalities)
    fresh_model.load_state_dict(model.state_dict())
    fresh = make_optimiser(fresh_model, TrainingConfig(lr=0.01, regime="negative-sampling",
                                                       large_graph=True))
    fresh.load_state_dict(saved)
    for name, part in optimiser.parts.items():
        for p_old, p_new in zip(part.param_groups[0]["params"],
                                fresh.parts[name].param_groups[0]["params"], strict=True):
            old, new = part.state[p_old], fresh.parts[name].state[p_new]
            assert old.keys() == new.keys()
            assert all(torch.equal(torch.as_tensor(old[k]), torch.as_tensor(new[k]))
                       for k in old)
    with pytest.raises(ValueError, match="--large-graph must match"):
        fresh.load_state_dict(torch.optim.Adam(model.parameters()).state_dict())


def test_clipping_sparse_gradients_matches_clipping_their_dense_form() -> None:
    torch.manual_seed(0)
    sparse_table = nn.Embedding(20, 4, sparse=True)
    dense_table = nn.Embedding(20, 4)
    dense_table.weight.data.copy_(sparse_table.weight.data)
    ids = torch.tensor([1, 3, 3, 7])
    for table in (sparse_table, dense_table):
        (table(ids) ** 2).sum().backward()
    norm_sparse = clip_grad_norm(sparse_table.parameters(), 0.5)
    norm_dense = clip_grad_norm(dense_table.parameters(), 0.5)
    assert sparse_table.weight.grad.is_sparse
    assert torch.allclose(norm_sparse, norm_dense)
    assert torch.allclose(sparse_table.weight.grad.to_dense(), dense_table.weight.grad)
    assert torch.linalg.vector_norm(dense_table.weight.grad) <= 0.5 + 1e-5


# -- the trainer in large-graph mode -----------------------------------------------------------
def large_config(**training: object):  # noqa: ANN201
    overrides = {"model.dim": 8, "model.relation_dim": 8, "model.expert_hidden": 8,
                 "model.cost_hidden": 8, "model.num_groups": 2, "training.batch_size": 256,
                 "training.eval_every": 1, "training.lr": 0.01, "training.negatives": 16,
                 "training.regime": "negative-sampling", "training.large_graph": True,
                 "evaluation.candidate_chunk": 100, "device": "cpu"}
    overrides.update({f"training.{k}": v for k, v in training.items()})
    return load_config(None, overrides, graph="synthetic-tiny")


def test_large_graph_run_resumes_bit_exactly(kg: MultimodalKG, tmp_path: Path) -> None:
    straight = run_training(large_config(epochs=3), kg, tmp_path / "straight", log=quiet,
                            progress=False)
    run_training(large_config(epochs=1), kg, tmp_path / "resumed", log=quiet, progress=False)
    resumed = run_training(large_config(epochs=3), kg, tmp_path / "resumed", resume=True,
                           log=quiet, progress=False)
    assert resumed.test == straight.test
    a, b = (torch.load(tmp_path / name / "last.pt", weights_only=True)
            for name in ("straight", "resumed"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    for part in ("sparse", "dense"):
        state_a, state_b = (s["optimiser"]["parts"][part]["state"] for s in (a, b))
        assert state_a.keys() == state_b.keys() and state_a
        assert all(torch.equal(torch.as_tensor(state_a[i][k]), torch.as_tensor(state_b[i][k]))
                   for i in state_a for k in state_a[i])
    with open(tmp_path / "resumed" / "history.csv") as handle:
        losses = [float(row["loss_triple"]) for row in csv.DictReader(handle)]
    assert len(losses) == 3 and losses[-1] < losses[0]


def test_resuming_a_dense_run_in_large_graph_mode_names_the_setting(kg: MultimodalKG,
                                                                    tmp_path: Path) -> None:
    run_training(large_config(epochs=1, large_graph=False), kg, tmp_path, log=quiet,
                 progress=False)
    with pytest.raises(DataError, match=r"different training settings \['large_graph'\]"):
        run_training(large_config(epochs=2), kg, tmp_path, resume=True, log=quiet,
                     progress=False)


# -- configuration errors ----------------------------------------------------------------------
def test_large_graph_refuses_one_to_n_training() -> None:
    with pytest.raises(DataError, match=r"large_graph \(--large-graph\) trains with negative "
                                        r"sampling only, but regime is '1-n'"):
        load_config(None, {"training.large_graph": True, "training.regime": "1-n"})


@pytest.mark.parametrize("chunk", [0, -3, 2.5, True])
def test_candidate_chunk_must_be_a_positive_integer(chunk: object) -> None:
    # 0 and -3 fail the range check, 2.5 and True the type check (booleans are not integers)
    with pytest.raises(DataError, match=r"candidate_chunk( \(--candidate-chunk\))? must be "
                                        r"(a positive integer|an integer or null)"):
        load_config(None, {"evaluation.candidate_chunk": chunk})


def test_large_graph_chunks_evaluation_unless_told_otherwise() -> None:
    implied = load_config(None, {"training.large_graph": True,
                                 "training.regime": "negative-sampling"})
    assert implied.evaluation.candidate_chunk == LARGE_GRAPH_CANDIDATE_CHUNK
    chosen = load_config(None, {"training.large_graph": True, "evaluation.candidate_chunk": 9,
                                "training.regime": "negative-sampling"})
    assert chosen.evaluation.candidate_chunk == 9
    assert load_config(None, {}).evaluation.candidate_chunk is None


def test_run_flag_large_graph_conflicts_with_explicit_one_to_n(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "pipelines" / "run.py"), "--graph", "synthetic-tiny",
         "--large-graph", "--training", "1-n", "--out", str(tmp_path / "x"), "--quiet"],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, ROAM_DATA_DIR=str(tmp_path / "d"), OMP_NUM_THREADS="1"))
    assert result.returncode == 2
    assert "error:" in result.stderr and "--large-graph" in result.stderr
    assert "'1-n'" in result.stderr
