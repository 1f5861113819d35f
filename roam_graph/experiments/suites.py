"""The paper's experiments as data: one ``Suite`` per table or figure, one ``Row`` per line of it.

A row is a label (as printed in the paper) plus configuration overrides in the keys of
``roam_graph.training.config.load_config`` (``model.variant``, ``model.modalities``, ...). The
paper's own numbers are kept next to the rows (MRR in %, keyed by our graph names) so every table
we write shows them beside ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roam_graph.data.errors import DataError
from roam_graph.evaluation.metrics import TABLE_KEYS

PAPER_GRAPHS = ("mkg-w", "mkg-y", "db15k", "kvc16k")


@dataclass(frozen=True)
class Row:
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)
    paper: dict[str, float] = field(default_factory=dict)   # graph -> the paper's MRR (%)


@dataclass(frozen=True)
class Suite:
    name: str
    source: str                      # where it is in the paper
    rows: tuple[Row, ...]
    metrics: tuple[str, ...] = ("mrr",)
    extra: tuple[str, ...] = ()      # columns besides metrics: seconds_per_epoch, ...
    figures: tuple[str, ...] = ("curves",)


def _paper(*values: float, graphs: tuple[str, ...] = PAPER_GRAPHS) -> dict[str, float]:
    return dict(zip(graphs, values, strict=True))


def _variant(name: str) -> dict[str, Any]:
    return {"model.model": "roam", "model.variant": name}


#: Top-1 routing from the first step (the paper's ReGOR), whatever a config file's routing says.
TOP1 = {"model.routing": "top1"}
FULL = _paper(40.09, 40.17, 44.19, 19.89)
#: Does routing carry information? (model/diagnostics.py): shown for every routing ablation.
ROUTING = ("oracle_agreement", "routing_regret", "relation_group_mi_bits",
           "relation_group_mi_permuted_bits")
_TABLE2_METRICS = TABLE_KEYS

SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite("main", "Table 2 (and Table 8 for fb15k237img); efficiency as Fig. 4", (
        Row("ROAM", _variant("full"), {**FULL, "fb15k237img": 42.66}),
        Row("Tucker", {"model.model": "tucker"}),
        Row("MoMoK", {"model.model": "momok"},
            {**_paper(35.89, 37.91, 39.57, 16.87), "fb15k237img": 35.52}),
        Row("Sinkhorn-MoE", {"model.model": "sinkhorn-moe"}, _paper(35.68, 35.35, 38.89, 17.90)),
        Row("ROAM (K=1)", {**_variant("full"), "model.num_groups": 1}),
        Row("ROAM (soft routing)", {**_variant("full"), "model.routing": "soft"}),
        Row("ROAM (top-1 routing)", {**_variant("full"), **TOP1}),
        Row("ROAM (residual experts)", {**_variant("full"), "model.expert_form": "residual"}),
        Row("ROAM (plain MLP experts)", {**_variant("full"), "model.expert_form": "mlp"}),
    ), _TABLE2_METRICS, ("seconds_per_epoch", "peak_memory_mb", *ROUTING),
        ("curves", "efficiency", "routing", "modality_weights")),
    Suite("moseg", "Table 3", (
        Row("SEP", _variant("sep"), _paper(38.87, 39.21, 42.89, 18.75)),
        Row("MGE", _variant("mge"), _paper(39.45, 39.78, 43.52, 19.31)),
        Row("MoSEG", _variant("full"), FULL),
    ), extra=ROUTING),
    Suite("regor", "Table 4", (
        Row("w/o f(e_i, r_j)", _variant("no-relation-cost"), _paper(39.98, 40.07, 43.38, 19.12)),
        Row("w/o g(W^(k))", _variant("prototype"), _paper(39.61, 39.66, 43.76, 19.41)),
        Row("w/o phi", _variant("cosine-cost"), _paper(39.42, 39.50, 43.71, 19.37)),
        Row("Full", _variant("full"), FULL),
        Row("Eq. 11 as printed", _variant("paper-ot-loss")),
    ), extra=ROUTING),
    Suite("modalities", "Table 5", (
        Row("Structure only", {"model.modalities": ["structure"]},
            _paper(37.41, 37.37, 41.11, 17.89)),
        Row("Image only", {"model.modalities": ["image"]}, _paper(37.35, 37.29, 41.02, 17.82)),
        Row("Text only", {"model.modalities": ["text"]}, _paper(37.12, 37.03, 40.73, 17.58)),
        Row("w/o Structure (Img + Txt)", {"model.modalities": ["image", "text"]},
            _paper(39.35, 39.30, 43.23, 19.15)),
        Row("w/o Image (Struct + Txt)", {"model.modalities": ["structure", "text"]},
            _paper(39.15, 39.11, 43.02, 18.98)),
        Row("w/o Text (Struct + Img)", {"model.modalities": ["structure", "image"]},
            _paper(39.38, 39.31, 43.24, 19.17)),
        Row("Full Model (all)", {"model.modalities": ["structure", "image", "text"]}, FULL),
    )),
    Suite("components", "Table 9 (appendix C.2)", (
        Row("Baseline (Eq. 12)", _variant("baseline-cosine"), _paper(36.42, 36.74, 39.22, 18.05)),
        Row("+LearnableCost", _variant("+learnable-cost"), _paper(37.51, 37.95, 40.58, 18.82)),
        Row("+DynGroupRep", _variant("+dyn-group-rep"), _paper(37.78, 38.34, 40.15, 18.95)),
        Row("+RelTransform", _variant("+rel-transform"), _paper(37.79, 39.18, 41.28, 18.65)),
        Row("Full", _variant("full"), FULL),
    ), extra=ROUTING),
    Suite("solvers", "Table 10 (appendix C.3)", (
        Row("TKSR", _variant("tksr"), _paper(39.18, 39.75, 43.03, 19.25)),
        Row("SOT", _variant("sot"), _paper(39.47, 39.84, 43.90, 19.72)),
        Row("LOT", _variant("lot"), _paper(39.80, 39.94, 44.14, 19.85)),
        Row("ROAM (Sinkhorn)", _variant("full"), FULL),
    ), ("mrr", "hits@1"), ("seconds_per_epoch", "inference_seconds", *ROUTING)),
    Suite("noise", "Table 11 (appendix C.3)", (
        Row("Noise-free (0%)", {"model.input_noise": 0.0}, FULL),
        Row("10% Noise", {"model.input_noise": 0.1}, _paper(39.33, 39.75, 42.51, 19.23)),
        Row("20% Noise", {"model.input_noise": 0.2}, _paper(38.94, 39.56, 41.85, 18.97)),
    ), ("mrr", "hits@1")),
    Suite("relation", "Table 12 (appendix C.4)", (
        Row("with r (Full)", _variant("full"), FULL),
        Row("w/o r", _variant("no-relation-routing"), _paper(39.33, 39.68, 43.77, 19.26)),
    ), extra=ROUTING),
    Suite("routing", "no table: does routing carry information? (docs/model.md)", (
        Row("ROAM (K=4, top-1)", {**_variant("full"), **TOP1}),
        Row("ROAM (K=1)", {**_variant("full"), "model.num_groups": 1, **TOP1}),
        Row("Tucker", {"model.model": "tucker"}),
        Row("ROAM, Eq. 11 as printed", {**_variant("paper-ot-loss"), **TOP1}),
        Row("ROAM (annealed routing)", {**_variant("full"), "model.routing": "anneal"}),
        Row("ROAM (soft routing)", {**_variant("full"), "model.routing": "soft"}),
    ), _TABLE2_METRICS, ("seconds_per_epoch", *ROUTING), ("curves",)),
    Suite("groups", "Fig. 2 (K = 3..7: MRR and routing entropy)", tuple(
        Row(f"K = {k}", {"model.num_groups": k}) for k in range(3, 8)
    ), ("mrr",), ("routing_entropy", *ROUTING), ("curves", "groups")),
)}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise DataError(f"unknown suite {name!r}; choose one of {', '.join(SUITES)}")
    return SUITES[name]
