"""The contracts the training path relies on: every model is a ``KGModel``; a regime turns a
batch into inputs and targets; early stopping selects on validation MRR alone; the progress a
checkpoint saves keeps the layout every earlier run was written with."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model import MODELS, KGModel, build_model, resolve_config
from roam_graph.training import config as training_config
from roam_graph.training.config import load_config
from roam_graph.training.progress import EarlyStopping, TrainingProgress
from roam_graph.training.regimes import (
    REGIME_CLASSES,
    NegativeSampling,
    OneToN,
    regime_for,
)

SMALL = {"dim": 8, "relation_dim": 8, "expert_hidden": 8, "cost_hidden": 8, "num_groups": 2}
LIBRARY = Path(__file__).resolve().parents[1] / "roam_graph"


def small_model(kg: MultimodalKG, name: str) -> KGModel:
    return build_model(resolve_config(name, **SMALL), kg.num_entities, 2 * kg.num_relations,
                       kg.modalities)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_keeps_the_model_contract(kg: MultimodalKG, name: str) -> None:
    model = small_model(kg, name).eval()
    assert isinstance(model, KGModel)
    heads, relations = torch.tensor([0, 1, 2]), torch.tensor([0, 1, kg.num_relations])
    all_scores = model(heads, relations).scores
    assert all_scores.shape == (3, kg.num_entities)
    given = model(heads, relations, torch.tensor([[5, 6], [7, 8], [9, 10]])).scores
    assert torch.allclose(given, all_scores.gather(1, torch.tensor([[5, 6], [7, 8], [9, 10]])),
                          atol=1e-5)
    encoded = model(heads, relations, candidate_encoding=model.encode_entities()).scores
    assert torch.allclose(encoded, all_scores, atol=1e-6)
    assert set(model.modality_names) <= {"structure", "image", "text"}


def test_only_momok_has_a_relation_free_modality_attention(kg: MultimodalKG) -> None:
    entities = torch.arange(10)
    for name in MODELS:
        weights = small_model(kg, name).entity_modality_weights(entities)
        if name == "momok":
            assert weights.shape == (10, len(kg.modalities) + 1)
            assert torch.allclose(weights.sum(dim=1), torch.ones(10))
        else:
            assert weights is None


@pytest.mark.parametrize("name", MODELS)
def test_sparse_entity_tables_are_the_entity_indexed_tables(kg: MultimodalKG, name: str
                                                            ) -> None:
    tables = small_model(kg, name).sparse_entity_tables()
    assert tables and all(table.shape[0] == kg.num_entities for table in tables)


def test_no_caller_probes_a_model_with_hasattr() -> None:
    probing = [f"{path.relative_to(LIBRARY)}:{number}"
               for path in LIBRARY.rglob("*.py")
               for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if re.search(r"\bhasattr\(|getattr\((model|inner|output), \"", line)]
    assert probing == []


def test_every_configured_regime_has_a_regime_object() -> None:
    assert tuple(REGIME_CLASSES) == training_config.REGIMES
    one_to_n = load_config(None, {}, graph="synthetic-tiny")
    sampled = load_config(None, {"training.regime": "negative-sampling"}, graph="synthetic-tiny")
    assert isinstance(regime_for(one_to_n), OneToN)
    assert isinstance(regime_for(sampled), NegativeSampling)


def test_one_to_n_scores_every_entity_against_smoothed_answers(kg: MultimodalKG) -> None:
    config = load_config(None, {"training.label_smoothing": 0.1, "training.batch_size": 4},
                         graph="synthetic-tiny")
    regime = regime_for(config)
    sampler = regime.make_sampler(kg, 4)
    sampler.set_epoch(1)
    inputs = regime.inputs(next(iter(sampler)), torch.device("cpu"))
    assert inputs.candidates is None and inputs.targets.shape == (4, kg.num_entities)
    low, high = inputs.targets.min(), inputs.targets.max()
    assert math.isclose(float(low), 0.1 / kg.num_entities, rel_tol=1e-6)
    assert math.isclose(float(high), 0.9 + 0.1 / kg.num_entities, rel_tol=1e-6)


def test_negative_sampling_puts_the_true_tail_first(kg: MultimodalKG) -> None:
    config = load_config(None, {"training.regime": "negative-sampling", "training.negatives": 3,
                                "training.batch_size": 8}, graph="synthetic-tiny")
    regime = regime_for(config)
    sampler = regime.make_sampler(kg, 8)
    sampler.set_epoch(1)
    inputs = regime.inputs(next(iter(sampler)), torch.device("cpu"))
    assert inputs.candidates.shape == inputs.targets.shape == (8, 4)
    assert torch.equal(inputs.targets, torch.tensor([[1.0, 0, 0, 0]]).expand(8, -1))


def test_early_stopping_selects_the_best_mrr_and_stops_after_patience() -> None:
    stopping = EarlyStopping(patience=2)
    seen = [stopping.observe(epoch, {"mrr": mrr, "mr": 10.0})
            for epoch, mrr in ((5, 0.2), (10, 0.3), (15, 0.25))]
    assert seen == [True, True, False] and not stopping.stopped
    assert (stopping.best_epoch, stopping.best_validation) == (10, {"mrr": 0.3, "mr": 10.0})
    assert not stopping.observe(20, {"mrr": 0.3})            # equal is not better
    assert stopping.stopped and stopping.best_epoch == 10


def test_progress_keeps_the_checkpoint_layout_and_round_trips() -> None:
    progress = TrainingProgress(EarlyStopping(3), {"graph": "g"}, [{"epoch": 1, "loss": 0.5}])
    assert set(progress.to_state()) == {"best_mrr", "best_epoch", "bad_evals", "history",
                                        "stopped_early", "config"}
    progress.stopping.observe(1, {"mrr": 0.1})
    progress.routing_selection = [0, 1]
    state = progress.to_state()
    assert state["best_validation"] == {"mrr": 0.1} and state["routing_selection"] == [0, 1]
    again = TrainingProgress.from_state(state, patience=5)
    assert again.to_state() == state and again.stopping.patience == 5
    assert again.last_epoch == 1
