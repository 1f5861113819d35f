"""Model configuration: one frozen dataclass, plus the named baselines and ablation variants of
the paper as data (overrides of the defaults), so that every name works from the command line and
from ``configs/*.yaml`` alike. Each key documents itself (meaning, the paper's symbol, allowed
values: ``roam_graph.keydoc``); docs/configuration.md is rendered from it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from roam_graph.keydoc import (
    AT_LEAST_1,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    documented,
    key_doc,
    keys_at_least_1,
)
from roam_graph.model.experts import EXPERT_FORMS
from roam_graph.model.sinkhorn import SOLVERS

MODELS: tuple[str, ...] = ("roam", "tucker", "momok", "sinkhorn-moe")
MODALITIES: tuple[str, ...] = ("structure", "image", "text")
#: The widths one number sets together (``--dim``, ``dim=`` of the Python API, the benchmarks),
#: so that a smaller model stays balanced.
WIDTHS: tuple[str, ...] = ("dim", "relation_dim", "expert_hidden", "cost_hidden")

#: Variant name -> overrides. Paper tables: 3 (MoSEG), 4 (ReGOR), 9 (components), 10 (solvers),
#: 12 (relation in routing).
VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    # soft and annealed routing are defined for the MoSEG layout only (one option per query)
    "sep": {"expert_layout": "sep", "routing": "top1"},
    "mge": {"expert_layout": "mge", "routing": "top1"},
    "no-relation-cost": {"cost_input": "raw"},
    "prototype": {"group_rep": "prototype"},
    "cosine-cost": {"cost_function": "cosine"},
    "baseline-cosine": {"cost_input": "raw", "group_rep": "prototype", "cost_function": "cosine"},
    "+learnable-cost": {"cost_input": "raw", "group_rep": "prototype", "cost_function": "learned"},
    "+dyn-group-rep": {"cost_input": "raw", "group_rep": "dynamic", "cost_function": "cosine"},
    "+rel-transform": {"cost_input": "fused", "group_rep": "prototype", "cost_function": "cosine"},
    "tksr": {"solver": "tksr", "routing": "soft"},   # mixes the 2 lowest-cost groups
    "sot": {"solver": "sot"},
    "lot": {"solver": "lot"},
    "no-relation-routing": {"cost_input": "fused_no_relation"},
    # Eq. 11 as printed trains the cost, with f = e~ as printed: reproduces its collapse
    "paper-ot-loss": {"cost_signal": "ot", "cost_centring": False, "cost_input": "fused_entity"},
}

@dataclass(frozen=True)
class ModelConfig:
    model: str = documented(
        "roam", "which model: ROAM, or a baseline of the paper's Table 2", choices=MODELS)
    variant: str = documented(
        "full", "a named ablation of ROAM: overrides of the model keys (docs/configuration.md, "
        "\"Variants\")",
        choices=tuple(VARIANTS))
    dim: int = documented(
        256, "entity embedding dimension; every expert's output width",
        symbol="d, \"Embedding Dimension\" (Table 13)", allowed=AT_LEAST_1)
    relation_dim: int = documented(
        256, "relation embedding dimension (Tucker's relation side)",
        symbol="r_j, \"Task Embedding Dimension\" (Table 13)", allowed=AT_LEAST_1)
    expert_hidden: int = documented(
        256, "hidden width of each sub-expert MLP",
        symbol="W_m^(k) of Eq. 2 (width not given by the paper)", allowed=AT_LEAST_1)
    expert_form: str = documented(
        "mlp", "mlp: Eq. 2 as printed; residual: x + MLP(x), the MLP's output near zero at "
        "initialisation, learns far faster (docs/model.md, \"Experts\")",
        symbol="Eq. 2", choices=EXPERT_FORMS)
    cost_hidden: int = documented(
        256, "hidden width of the cost MLP phi and of the group summary's attention A",
        symbol="\"Gating Hidden Dimension\" (Table 13)", allowed=AT_LEAST_1)
    num_groups: int = documented(
        4, "number of expert groups (MoMoK: linear experts per modality)",
        symbol="K (Table 13)", allowed=AT_LEAST_1)
    sinkhorn_iterations: int = documented(
        20, "Sinkhorn iterations per transport plan", symbol="L (Table 13)", allowed=AT_LEAST_1)
    ot_epsilon: float = documented(
        0.05, "entropic regulariser of the plan and of L_OT; also the routing temperature at "
        "evaluation and the critic's",
        symbol="tau of Eq. 11 (epsilon in docs/model.md)", allowed=POSITIVE)
    ot_weight: float = documented(
        0.005, "weight of the OT loss in the total loss",
        symbol="lambda of Eq. 9, \"OT Regularization\" (Table 13)")
    cost_signal: str = documented(
        "critic", "what trains the cost phi and g: critic (fit to the options' losses, ours) | "
        "ot (Eq. 11 and the straight-through weight, as printed; docs/model.md)",
        symbol="Eq. 11 (ot)", choices=("critic", "ot"))
    cost_centring: bool = documented(
        True, "route on per-query centred costs (scale control of the critic signal)")
    critic_queries: int = documented(
        256, "queries per training batch scored under every group for the critic",
        allowed=AT_LEAST_1)
    attention_temperature: float = documented(
        1.0, "temperature of the modality attention", symbol="tau of Eq. 4", allowed=POSITIVE)
    attention_noise: bool = documented(
        True, "learnable Gaussian noise on the attention logits (training only)",
        symbol="delta_m of Eq. 4")
    routing: str = documented(
        "anneal", "top1: each query scored by its plan's group from the first step (the "
        "paper's ReGOR); soft: the plan-weighted mixture of the groups' scores; anneal: soft at "
        "first, hardening into top-1 during training (evaluation top-1 always; measured better "
        "than top1 on MKG-Y and the default graph: docs/model.md, \"Annealed routing\")",
        choices=("top1", "soft", "anneal"))
    anneal_fraction: float = documented(
        0.5, "routing anneal: share of the training epochs over which the mixture goes from "
        "the soft plan to top-1", allowed="in (0, 1]")
    top1_scoring: str = documented(
        "grouped", "how top-1 routing scores: grouped: one product per group, its size read on "
        "the host (one host sync a step); dense: every query under every group, kept by its "
        "one-hot choice (no sync, for CUDA graphs or torch.compile; the same scores, but 2.8x "
        "a DB15K step's FLOPs at batch 4096: docs/benchmarks.md)",
        choices=("grouped", "dense"))
    eval_routing: str = documented(
        "balanced", "routing at evaluation, per query: balanced: argmin of the cost minus the "
        "running OT prices (as training routes); cost: argmin of the raw cost",
        choices=("balanced", "cost"))
    candidate_encoding: str = documented(
        "relation_aware", "candidate tails fused under the query's relation, or without it "
        "(MoMoK's cheaper choice)",
        symbol="Eq. 3 on candidates", choices=("relation_aware", "relation_agnostic"))
    modalities: tuple[str, ...] = documented(
        MODALITIES, "the modalities used (a list, or one comma-separated string)",
        symbol="M (Table 5)", allowed=f"a non-empty subset of {', '.join(MODALITIES)}")
    finetune_features: bool = documented(
        False, "train the raw image/text features, or keep them frozen")
    feature_width: int | None = documented(
        None, "project frozen image/text features once per run onto their first principal "
        "components, this many, before the trainable adapter (null: the full width, the "
        "adapter reads every feature); a feature narrower than this is kept as it is",
        symbol="(the paper has no adapter; Table 6 lists widths 256-4096; docs/model.md)",
        allowed=">= 1 or null")
    input_noise: float = documented(
        0.0, "Gaussian noise on the input features, as a fraction of their standard deviation",
        symbol="Table 11", allowed=NON_NEGATIVE)
    input_dropout: float = documented(
        0.3, "Tucker's dropout on the head embedding",
        symbol="Tucker (Eq. 10), TuckER's value", allowed=PROBABILITY)
    hidden_dropout1: float = documented(
        0.4, "Tucker's dropout after the first batch norm",
        symbol="Tucker (Eq. 10), TuckER's value", allowed=PROBABILITY)
    hidden_dropout2: float = documented(
        0.5, "Tucker's dropout on the query vector",
        symbol="Tucker (Eq. 10), TuckER's value", allowed=PROBABILITY)
    # set by the variants (VARIANTS) and the baselines (MODEL_DEFAULTS):
    expert_layout: str = documented(
        "moseg", "moseg: K groups of one expert per modality; sep: one pool of M*K experts "
        "shared by all modalities, routed per modality; mge: a pool of K experts per modality, "
        "routed per modality",
        symbol="MoSEG / SEP / MGE (Table 3)", choices=("moseg", "sep", "mge"))
    cost_input: str = documented(
        "fused", "what the cost sees of a query: fused: [e~ || r]; fused_entity: e~ (f as "
        "printed); raw: [mean of the adapted inputs || r]; fused_no_relation: e~ fused without "
        "r; raw_no_relation: the mean of the adapted inputs",
        symbol="f(e_i, r_j) of Eq. 6; Tables 4, 12",
        choices=("fused", "fused_entity", "raw", "fused_no_relation", "raw_no_relation"))
    group_rep: str = documented(
        "dynamic", "how a group is represented to the cost: dynamic (a summary of its experts' "
        "parameters) | prototype (a learned vector)",
        symbol="g(W^(k)) of Eq. 7 | v_k of Eq. 5", choices=("dynamic", "prototype"))
    cost_function: str = documented(
        "learned", "learned MLP phi, or 1 - cosine",
        symbol="phi of Eq. 6 | Eq. 12", choices=("learned", "cosine"))
    solver: str = documented(
        "sinkhorn", "the transport-plan solver", symbol="Table 10", choices=SOLVERS)
    fusion_relation: bool = documented(
        True, "the relation inside the modality attention",
        symbol="r_j in U_m([v || r_j]) of Eq. 4")


#: Baselines expressed on the ROAM machinery. Sinkhorn-MoE (Clark et al. 2022): prototype
#: experts, cosine cost, no relation anywhere in routing or fusion; its router learns through the
#: straight-through weight of the plan, top-1 from the first step, as published (not through
#: our critic, not annealed).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "roam": {},
    "tucker": {"modalities": ("structure",)},
    "momok": {},
    "sinkhorn-moe": {"cost_input": "raw_no_relation", "group_rep": "prototype",
                     "cost_function": "cosine", "fusion_relation": False,
                     "cost_signal": "ot", "cost_centring": False, "routing": "top1"},
}

#: The allowed values of each key that takes one name (from the keys' own documentation; solver
#: and expert-form names belong to the modules that dispatch on them: sinkhorn.py, experts.py).
CHOICES: dict[str, tuple[str, ...]] = {
    f.name: key_doc(f).choices for f in fields(ModelConfig)
    if f.name not in ("model", "variant") and key_doc(f).choices}
#: What Tucker reads (baselines.py: TuckerModel; the modalities only to report those it drops).
_TUCKER_READS = frozenset({"model", "dim", "relation_dim", "modalities", "input_dropout",
                           "hidden_dropout1", "hidden_dropout2"})
#: What the baselines read; ROAM and Sinkhorn-MoE (a RoamModel) read every key, and the trainer
#: their ot_weight and ot_epsilon.
_BASELINE_READS: dict[str, frozenset[str]] = {
    "tucker": _TUCKER_READS,
    "momok": _TUCKER_READS | {"num_groups", "finetune_features", "input_noise", "feature_width"},
}


def settings_read_by(model: str) -> frozenset[str]:
    """The ``ModelConfig`` keys whose values reach ``model``'s construction or training; a change
    to any other key leaves its parameters, scores and losses unchanged. ``variant`` applies to
    ROAM alone (another model's is always ``full``)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if model in _BASELINE_READS:
        return _BASELINE_READS[model]
    every = frozenset(f.name for f in fields(ModelConfig))
    return every if model == "roam" else every - {"variant"}


def same_widths(dim: int) -> dict[str, int]:
    """``dim`` for every model width (``WIDTHS``): ``resolve_config(model, **same_widths(32))``."""
    return dict.fromkeys(WIDTHS, dim)


def resolve_config(model: str = "roam", variant: str = "full", **settings: Any) -> ModelConfig:
    """Defaults <- model defaults <- variant overrides <- explicit settings; every name checked."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if variant != "full" and model != "roam":
        raise ValueError(f"variant {variant!r} applies to model 'roam', not {model!r}")
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown model setting(s) {unknown}; known: {sorted(known)}")
    config = replace(ModelConfig(model=model, variant=variant), **MODEL_DEFAULTS[model],
                     **VARIANTS[variant])
    config = replace(config, **settings)
    check_config(config)
    return config


def check_config(config: ModelConfig) -> None:
    for name, choices in CHOICES.items():
        value = getattr(config, name)
        if value not in choices:
            raise ValueError(f"{name}={value!r} is not one of {', '.join(choices)}")
    bad = [m for m in config.modalities if m not in MODALITIES]
    if bad or not config.modalities:
        raise ValueError(f"modalities {list(config.modalities)}: choose a non-empty subset of "
                         f"{', '.join(MODALITIES)}")
    for name in keys_at_least_1(ModelConfig):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.ot_epsilon <= 0 or config.attention_temperature <= 0:
        raise ValueError("ot_epsilon and attention_temperature must be > 0")
    if not 0 < config.anneal_fraction <= 1:
        raise ValueError(f"anneal_fraction must be in (0, 1], got {config.anneal_fraction}")
    if config.feature_width is not None and config.feature_width < 1:
        raise ValueError(f"feature_width must be >= 1 or null, got {config.feature_width}")
    if not config.input_noise >= 0:
        raise ValueError(f"input_noise must be >= 0, got {config.input_noise}")
