"""Model configuration: one frozen dataclass, plus the named baselines and ablation variants of
the paper as data (overrides of the defaults), so that every name works from the command line and
from ``configs/*.yaml`` alike.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from roam_graph.model.experts import EXPERT_FORMS
from roam_graph.model.sinkhorn import SOLVERS

MODELS: tuple[str, ...] = ("roam", "tucker", "momok", "sinkhorn-moe")
MODALITIES: tuple[str, ...] = ("structure", "image", "text")
#: The widths one number sets together (``--dim``, ``dim=`` of the Python API, the benchmarks),
#: so that a smaller model stays balanced.
WIDTHS: tuple[str, ...] = ("dim", "relation_dim", "expert_hidden", "cost_hidden")


@dataclass(frozen=True)
class ModelConfig:
    model: str = "roam"
    variant: str = "full"
    dim: int = 256                       # entity embedding dimension (Table 13)
    relation_dim: int = 256              # "task embedding dimension" (Table 13)
    expert_hidden: int = 256             # hidden width of each sub-expert MLP (Eq. 2)
    expert_form: str = "mlp"             # mlp (Eq. 2 as printed) | residual (x + MLP(x), MLP
    #                                      output zero at init: learns far faster, docs/model.md)
    cost_hidden: int = 256               # "gating hidden dimension": hidden width of phi and A
    num_groups: int = 4                  # K
    sinkhorn_iterations: int = 20        # L
    ot_epsilon: float = 0.05             # entropic regulariser (tau of Eq. 11)
    ot_weight: float = 0.005             # lambda of Eq. 9
    cost_signal: str = "critic"          # what trains the cost phi and g (docs/model.md):
    #                                      critic (fit to the options' losses, our default) |
    #                                      ot (Eq. 11 and the straight-through weight, as printed)
    cost_centring: bool = True           # route on per-query centred costs (scale control)
    critic_queries: int = 256            # queries per batch scored under every option (critic)
    attention_temperature: float = 1.0   # tau of Eq. 4
    attention_noise: bool = True         # learnable Gaussian noise delta_m of Eq. 4 (training)
    routing: str = "top1"                # top1 (straight-through) | soft (plan-weighted mixture)
    eval_routing: str = "balanced"       # per-query routing at evaluation: argmin of c minus the
    #                                      running OT prices (as training routes) | cost (raw c)
    candidate_encoding: str = "relation_aware"   # | relation_agnostic (MoMoK's cheaper choice)
    modalities: tuple[str, ...] = MODALITIES
    finetune_features: bool = False      # train raw image/text features, or keep them frozen
    input_noise: float = 0.0             # Gaussian noise on input features, fraction of std
    input_dropout: float = 0.3           # TuckER's dropouts
    hidden_dropout1: float = 0.4
    hidden_dropout2: float = 0.5
    # resolved from model/variant names (see VARIANTS):
    expert_layout: str = "moseg"         # moseg | sep | mge (Table 3)
    cost_input: str = "fused"            # fused [e~ || r] | fused_entity (e~: f as printed) |
    #                                      raw | fused_no_relation | raw_no_relation
    group_rep: str = "dynamic"           # dynamic g(W) (Eq. 7) | prototype v_k (Eq. 5)
    cost_function: str = "learned"       # learned phi (Eq. 6) | cosine (Eq. 12)
    solver: str = "sinkhorn"             # sinkhorn | tksr | sot | lot (Table 10)
    fusion_relation: bool = True         # relation term inside the modality attention (Eq. 4)


#: Variant name -> overrides. Paper tables: 3 (MoSEG), 4 (ReGOR), 9 (components), 10 (solvers),
#: 12 (relation in routing).
VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "sep": {"expert_layout": "sep"},
    "mge": {"expert_layout": "mge"},
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

#: Baselines expressed on the ROAM machinery. Sinkhorn-MoE (Clark et al. 2022): prototype
#: experts, cosine cost, no relation anywhere in routing or fusion; its router learns through the
#: straight-through weight of the plan, as published (not through our critic).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "roam": {},
    "tucker": {"modalities": ("structure",)},
    "momok": {},
    "sinkhorn-moe": {"cost_input": "raw_no_relation", "group_rep": "prototype",
                     "cost_function": "cosine", "fusion_relation": False,
                     "cost_signal": "ot", "cost_centring": False},
}

#: The allowed values of each string key. Solver and expert-form names belong to the modules that
#: dispatch on them (sinkhorn.py, experts.py): imported, so a new solver is added in one place.
CHOICES: dict[str, tuple[str, ...]] = {
    "routing": ("top1", "soft"),
    "cost_signal": ("critic", "ot"),
    "expert_form": EXPERT_FORMS,
    "eval_routing": ("balanced", "cost"),
    "candidate_encoding": ("relation_aware", "relation_agnostic"),
    "expert_layout": ("moseg", "sep", "mge"),
    "cost_input": ("fused", "fused_entity", "raw", "fused_no_relation", "raw_no_relation"),
    "group_rep": ("dynamic", "prototype"),
    "cost_function": ("learned", "cosine"),
    "solver": SOLVERS,
}


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
    for name in ("dim", "relation_dim", "expert_hidden", "cost_hidden", "num_groups",
                 "sinkhorn_iterations", "critic_queries"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.ot_epsilon <= 0 or config.attention_temperature <= 0:
        raise ValueError("ot_epsilon and attention_temperature must be > 0")
    if not config.input_noise >= 0:
        raise ValueError(f"input_noise must be >= 0, got {config.input_noise}")
