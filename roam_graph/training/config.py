"""Experiment configuration: ``configs/<graph>.yaml`` (data) <- command-line overrides.

An experiment is ``graph + model settings + training settings + evaluation settings``; the
resolved configuration is written next to the results so any run can be repeated exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import yaml

from roam_datasets.registry import REGISTERED, SYNTHETIC
from roam_graph.data.errors import DataError, quote, shorten
from roam_graph.data.formats import FORMATS
from roam_graph.data.text import TEXT_ENCODERS
from roam_graph.data.textfile import read_text
from roam_graph.graph.prepare import PrepareOptions, check_text_encoder, graph_format
from roam_graph.keydoc import (
    AT_LEAST_1,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    KeyDoc,
    documented,
    key_doc,
    keys_at_least_1,
)
from roam_graph.model.config import WIDTHS, ModelConfig, resolve_config
from roam_graph.model.loss import LOSS_NAMES
from roam_graph.sampling.negatives import STRATEGIES, strategy_names
from roam_graph.training.config_types import ConfigLoader, field_types, typed_value
from roam_graph.training.precision import PRECISIONS

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
REGIMES: tuple[str, ...] = ("1-n", "negative-sampling")
#: Triple losses by name (bce: Eq. 10; softmax: cross-entropy), as roam_graph.model.loss has them.
LOSSES: tuple[str, ...] = LOSS_NAMES
#: Candidate chunk of evaluation in large-graph mode when none is configured: the fastest of
#: those measured on CPU (bench/chunked_eval.py, docs/SCALING.md); raise it on a GPU.
LARGE_GRAPH_CANDIDATE_CHUNK = 8192


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = documented(
        100, "training epochs, at most (early stopping may end sooner)",
        symbol="\"Training Epochs\" (Table 13)", allowed=AT_LEAST_1)
    batch_size: int = documented(
        1024, "queries (1-n) or positive triples (negative-sampling) per step; the global batch "
        "of a distributed run", symbol="\"Batch Size\" (Table 13)", allowed=AT_LEAST_1)
    lr: float = documented(
        1e-3, "Adam's learning rate", symbol="eta, \"Learning Rate\" (Table 13)", allowed=POSITIVE)
    regime: str = documented(
        "1-n", "1-n: every (head, relation) query scored against all entities (TuckER's "
        "K-vs-all); negative-sampling: sampled negatives per positive triple",
        symbol="T^- of Eq. 10", choices=REGIMES)
    label_smoothing: float = documented(
        0.1, "1-n targets become (1 - s) y + s / N (TuckER's)", allowed=PROBABILITY)
    loss: str = documented(
        "bce", "bce: binary cross-entropy on logits, averaged; softmax: cross-entropy of the "
        "softmax over the candidates, learns faster early on (docs/training.md)",
        symbol="L_triple of Eq. 10 (bce)", choices=LOSSES)
    negatives: int = documented(
        64, "negatives per positive (negative-sampling)",
        symbol="size of T^- per positive (Eq. 10)", allowed=AT_LEAST_1)
    negative_strategy: str = documented(
        "uniform", "how negatives are drawn (roam_graph.sampling, docs/sampling.md)",
        allowed=f"{', '.join(STRATEGIES)}, or several joined by '+' (at most one side and "
                "one distribution)")
    eval_every: int = documented(
        10, "epochs between validation evaluations (the last epoch is always evaluated)",
        allowed=AT_LEAST_1)
    patience: int = documented(
        10, "evaluations without a better validation MRR before stopping", allowed=AT_LEAST_1)
    max_grad_norm: float | None = documented(
        None, "clip the gradients' norm to this", allowed=">= 0, or 0 / null: no clipping")
    num_workers: int = documented(
        0, "sampler worker processes (0: batches are built in the training process)",
        allowed=NON_NEGATIVE)
    precision: str = documented(
        "auto", "numeric precision of the training step's matrix products: fp32, bf16 or fp16 "
        "autocast (Sinkhorn and the losses stay fp32; fp16 with a gradient scaler, CUDA only); "
        "auto: bf16 on a CUDA device that supports it, fp32 on a CPU (evaluation is always "
        "fp32)", choices=PRECISIONS)
    large_graph: bool = documented(
        False, "large-graph mode (docs/SCALING.md): negative sampling only, sparse entity-table "
        "gradients with SparseAdam (a step's cost does not grow with the number of entities), "
        "evaluation in candidate chunks")


@dataclass(frozen=True)
class EvaluationConfig:
    batch_size: int = documented(
        256, "queries per evaluation batch", allowed=AT_LEAST_1)
    candidate_chunk: int | None = documented(
        None, "score candidates in chunks of this many entities (null: all at once; "
        f"{LARGE_GRAPH_CANDIDATE_CHUNK} in large-graph mode): memory is bounded by batch_size x "
        "candidate_chunk scores, ranks are identical (docs/SCALING.md)", allowed=">= 1 or null")


@dataclass(frozen=True)
class ExperimentConfig:
    graph: str = documented(
        "synthetic", "the graph: registered, generated, or a name of your own "
        "(docs/data-formats.md)",
        allowed=f"{', '.join([*REGISTERED, *SYNTHETIC])}, or your own name")
    source: str | None = documented(
        None, "folder with the graph's files (null: <data dir>/raw/<graph>/)")
    data_dir: str | None = documented(
        None, "cache folder (null: $ROAM_DATA_DIR, else ./data)")
    format: str | None = documented(
        None, "file format of a graph of your own (null: tsv); a registered graph has its own, "
        "a generated one none", choices=FORMATS)
    text_encoder: str = documented(
        "none", "text features from entity names and descriptions: minilm (offline MiniLM, "
        "extra roam-graph[text]) or none", choices=TEXT_ENCODERS)
    seed: int = documented(
        0, "seeds initialisation, batch order, negatives and dropout (the synthetic graphs are "
        "generated with seed 0 whatever this is)", allowed="[0, 2**32)")
    device: str = documented(
        "auto", "where to train: auto picks cuda when there is a GPU, else cpu",
        allowed="auto, cpu, cuda, cuda:N")
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model"]["modalities"] = list(self.model.modalities)
        return data


#: Section name ("" for the top level) -> the dataclass whose fields are its keys.
SECTIONS: dict[str, type] = {"": ExperimentConfig, "model": ModelConfig,
                             "training": TrainingConfig, "evaluation": EvaluationConfig}


def key_docs() -> dict[str, KeyDoc]:
    """Every key of every section, as ``load_config`` names it (``seed``, ``model.dim``), with
    its documentation; a key without any (not made by ``keydoc.key``) maps to None."""
    return {(f"{section}." if section else "") + f.name: key_doc(f)
            for section, cls in SECTIONS.items() for f in fields(cls)
            if section or f.name not in SECTIONS}


#: Where an override without a named origin (a flag) came from, in messages.
OVERRIDES = "overrides"
#: Seeds feed NumPy's SeedSequence (non-negative) and torch.manual_seed; 32 bits are plenty.
SEED_LIMIT = 2**32
Origin = Callable[[str], str]


def default_config_path(graph: str) -> Path | None:
    path = CONFIG_DIR / f"{graph}.yaml"
    return path if path.is_file() else None


def load_config(path: Path | None, overrides: dict[str, Any] | None = None,
                graph: str | None = None, origins: dict[str, str] | None = None
                ) -> ExperimentConfig:
    """Read a YAML config (or defaults), then apply overrides; every value is checked by type
    and range here, before any work starts.

    ``overrides`` keys are ``graph``, ``seed``, ... for the top level and ``model.dim``,
    ``training.epochs``, ``evaluation.batch_size`` for the sections (None values are skipped).
    ``origins`` names where an override came from (``{"training.epochs": "--epochs"}``), so that
    an error says which flag to fix; ``graph`` is the ``--graph`` flag."""
    values, where = _read_file(path)
    default = str(path) if path else "defaults"

    def origin_in(section: str) -> Origin:
        fallback = f"{default} [{section}]" if section and path else default
        return lambda key: where.get(f"{section}.{key}" if section else key, fallback)

    for section, cls in SECTIONS.items():  # the file's own values, even those a flag overrides
        values[section] = _typed(cls, values[section], origin_in(section))
    layered = {**({"graph": graph} if graph is not None else {}), **(overrides or {})}
    named = {"graph": "--graph", **(origins or {})}
    for key, value in layered.items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        if section not in SECTIONS:
            raise DataError(f"{named.get(key, OVERRIDES)}: unknown section in {key!r}; "
                            f"sections: {', '.join(s for s in SECTIONS if s)}")
        values[section][name] = value
        where[key] = named.get(key, OVERRIDES)
    checked = {section: _typed(cls, values[section], origin_in(section))
               for section, cls in SECTIONS.items()}
    return _build(checked, origin_in)


def _read_file(path: Path | None) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The file's values per section, and the origin of each (``file [section]``)."""
    values: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    if path is None:
        return values, {}
    try:
        raw = yaml.load(read_text(Path(path)), Loader=ConfigLoader) or {}
    except yaml.YAMLError as error:
        raise yaml_error(path, error) from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: a config must be a mapping of keys to values, got "
                        f"{quote(raw)}")
    where: dict[str, str] = {}
    for key, value in raw.items():
        if key in SECTIONS and key:
            if value is not None and not isinstance(value, dict):
                raise DataError(f"{path}: {key} must be a section (a mapping of keys to "
                                f"values), got {quote(value)}")
            values[key] = {str(k): v for k, v in (value or {}).items()}
            where.update({f"{key}.{k}": f"{path} [{key}]" for k in values[key]})
        else:
            values[""][str(key)] = value
            where[str(key)] = str(path)
    return values, where


def yaml_error(path: Path, error: yaml.YAMLError) -> DataError:
    """One line: the file, the line and column PyYAML stopped at, and its problem."""
    mark = getattr(error, "problem_mark", None)
    problem = " ".join(str(getattr(error, "problem", None) or error).split())
    where = f"{path}:{mark.line + 1}: column {mark.column + 1}" if mark else str(path)
    return DataError(f"{where}: not valid YAML ({shorten(problem)})")


def _typed(cls: type, values: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """Unknown keys are refused; every known one is checked against its annotation."""
    types_ = {k: v for k, v in field_types(cls).items() if v not in SECTIONS.values()}
    for key in values:
        if key not in types_:
            unknown = sorted(k for k in values if k not in types_ and origin(k) == origin(key))
            raise DataError(f"{origin(key)}: unknown key(s) {quote(unknown)}; known keys: "
                            f"{sorted(types_)}")
    return {key: typed_value(value, types_[key], key, origin(key))
            for key, value in values.items()}


def _build(checked: dict[str, dict[str, Any]], origin_in: Callable[[str], Origin]
           ) -> ExperimentConfig:
    """Range and choice checks, each naming the origin of the value it refuses."""
    top, settings = checked[""], dict(checked["model"])
    try:
        model = resolve_config(settings.pop("model", "roam"), settings.pop("variant", "full"),
                               **settings)
    except ValueError as error:
        raise _model_error(error, checked["model"], origin_in("model")) from None
    check_dropouts(model, origin_in("model"))
    training = TrainingConfig(**checked["training"])
    check_training(training, origin_in("training"))
    evaluation = EvaluationConfig(**checked["evaluation"])
    check_evaluation(evaluation, origin_in("evaluation"))
    if training.large_graph and evaluation.candidate_chunk is None:
        evaluation = replace(evaluation, candidate_chunk=LARGE_GRAPH_CANDIDATE_CHUNK)
    config = ExperimentConfig(**top, model=model, training=training, evaluation=evaluation)
    check_top_level(config, origin_in(""))
    return config


def _model_error(error: ValueError, given: dict[str, Any], origin: Origin) -> DataError:
    """The model layer names the offending key in its message; the error names where it came
    from (several places when the message names several keys, e.g. model and variant)."""
    named = {origin(key) for key in given if re.search(rf"\b{re.escape(key)}\b", str(error))}
    return DataError(f"{', '.join(sorted(named)) or origin('model')}: {error}")


def check_dropouts(model: ModelConfig, origin: Origin) -> None:
    """Dropout rates are probabilities; torch would refuse others only when the model is built,
    after the graph was prepared (model/config.py's check_config does not look at them)."""
    for name in ("input_dropout", "hidden_dropout1", "hidden_dropout2"):
        if not 0 <= getattr(model, name) < 1:
            raise DataError(f"{origin(name)}: {name} must be in [0, 1), got "
                            f"{getattr(model, name)}")


def check_top_level(config: ExperimentConfig, origin: Origin) -> None:
    if not 0 <= config.seed < SEED_LIMIT:
        raise DataError(f"{origin('seed')}: seed must be in [0, 2**32), got {config.seed}")
    check_device_name(config.device, origin("device"))
    check_text_encoder(config.text_encoder, origin("text_encoder"))
    graph_format(config.graph, config.format, origin("format"))


def check_device_name(name: str, origin: str) -> None:
    """``auto``, or a name torch understands (``cpu``, ``cuda``, ``cuda:1``, ...); whether the
    device exists on this machine is decided when the run starts (trainer.resolve_device)."""
    if name == "auto":
        return
    try:
        torch.device(name)
    except RuntimeError:
        raise DataError(f"{origin}: device {quote(name)} is not a device name; use auto, cpu, "
                        f"cuda or cuda:N") from None


def check_training(training: TrainingConfig, origin: Origin) -> None:
    if training.regime not in REGIMES:
        raise DataError(f"{origin('regime')}: regime {quote(training.regime)} is not one of "
                        f"{', '.join(REGIMES)}")
    for name in keys_at_least_1(TrainingConfig):
        if getattr(training, name) < 1:
            raise DataError(f"{origin(name)}: {name} must be >= 1, got "
                            f"{getattr(training, name)}")
    if training.precision not in PRECISIONS:
        raise DataError(f"{origin('precision')}: precision {quote(training.precision)} is not "
                        f"one of {', '.join(PRECISIONS)}")
    if training.loss not in LOSSES:
        raise DataError(f"{origin('loss')}: loss {quote(training.loss)} is not one of "
                        f"{', '.join(LOSSES)}")
    try:
        strategy_names(training.negative_strategy)
    except ValueError as error:
        raise DataError(f"{origin('negative_strategy')}: {error}") from None
    if training.lr <= 0:
        raise DataError(f"{origin('lr')}: lr must be > 0, got {training.lr}")
    if not 0 <= training.label_smoothing < 1:
        raise DataError(f"{origin('label_smoothing')}: label_smoothing must be in [0, 1), got "
                        f"{training.label_smoothing}")
    if training.max_grad_norm is not None and training.max_grad_norm < 0:
        raise DataError(f"{origin('max_grad_norm')}: max_grad_norm must be >= 0 (0 or null: no "
                        f"clipping), got {training.max_grad_norm}")
    if training.num_workers < 0:
        raise DataError(f"{origin('num_workers')}: num_workers must be >= 0, got "
                        f"{training.num_workers}")
    if training.large_graph and training.regime != "negative-sampling":
        where = ", ".join(sorted({origin("large_graph"), origin("regime")}))
        raise DataError(f"{where}: large_graph (--large-graph) trains with negative sampling "
                        f"only, but regime is {training.regime!r} (--regime): 1-N scores every "
                        f"entity for every query, so its steps grow with the number of entities")


def check_evaluation(evaluation: EvaluationConfig, origin: Origin) -> None:
    if evaluation.batch_size < 1:
        raise DataError(f"{origin('batch_size')}: evaluation batch_size must be >= 1, got "
                        f"{evaluation.batch_size}")
    chunk = evaluation.candidate_chunk
    if chunk is not None and chunk < 1:
        raise DataError(f"{origin('candidate_chunk')}: candidate_chunk (--candidate-chunk) must "
                        f"be a positive integer or null, got {chunk!r}")


def with_seed(config: ExperimentConfig, seed: int) -> ExperimentConfig:
    return replace(config, seed=seed)


def prepare_options(config: ExperimentConfig, download: bool = False) -> PrepareOptions:
    """What ``prepare_graph`` needs to load the graph a configuration names; ``download``:
    fetch a registered graph's files on first use (``PrepareOptions.fetch_missing``)."""
    return PrepareOptions(config.graph, Path(config.source) if config.source else None,
                          Path(config.data_dir) if config.data_dir else None,
                          config.text_encoder, format=config.format, fetch_missing=download)


def parse_settings(items: list[str]) -> tuple[dict[str, object], dict[str, str]]:
    """``--set model.expert_form=residual`` -> ``{"model.expert_form": "residual"}`` (YAML
    values: numbers, booleans and lists are typed), and the ``--set`` item behind each key
    (``load_config``'s ``origins``: errors name it)."""
    settings: dict[str, object] = {}
    origins: dict[str, str] = {}
    for item in items:
        key, separator, value = item.partition("=")
        section = key.strip().rpartition(".")[0]
        if not separator or not key.strip() or section not in SECTIONS:
            raise DataError(f"--set {quote(item)}: expected KEY=VALUE with KEY a top-level key "
                            "or model.*, training.*, evaluation.*, e.g. model.expert_form=residual")
        try:
            settings[key.strip()] = yaml.load(value, Loader=ConfigLoader)
        except yaml.YAMLError:
            raise DataError(f"--set {quote(item)}: {quote(value)} is not a valid YAML "
                            "value") from None
        origins[key.strip()] = f"--set {quote(item)}"
    return settings, origins


def width_overrides(dim: int | None) -> dict[str, int | None]:
    """``--dim N`` as override keys: one number for every model width (``WIDTHS``)."""
    return {f"model.{name}": dim for name in WIDTHS}


def keyword_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Python keywords -> ``load_config`` override keys: top-level fields as they are, ``dim``
    as ``--dim`` (an explicit ``relation_dim`` etc. still wins), any other name in the first
    section that has it (model, training, evaluation: ``batch_size`` is the training batch).
    Dotted keys (``evaluation.batch_size``) pass through; paths become text."""
    section_fields = {name: {f.name for f in fields(kind)}
                      for name, kind in SECTIONS.items() if name}
    top = {f.name for f in fields(ExperimentConfig)} - set(section_fields)
    settings: dict[str, Any] = width_overrides(values["dim"]) if "dim" in values else {}
    for key, value in values.items():
        if key == "dim":
            continue
        section = next((name for name, names in section_fields.items() if key in names), None)
        if "." not in key and key not in top and section is None:
            known = sorted(top.union(*section_fields.values()))
            raise DataError(f"unknown setting {quote(key)}; known: {', '.join(known)}")
        # paths as text: the config is saved as JSON and inside weights-only checkpoints
        settings[key if "." in key or key in top else f"{section}.{key}"] = \
            str(value) if isinstance(value, Path) else value
    return settings


def default_out(config: ExperimentConfig) -> Path:
    """Where a run goes without ``--out``: ``runs/<graph>/<model>-<variant>/seed<S>``."""
    model = config.model
    return Path("runs") / config.graph / f"{model.model}-{model.variant}" / f"seed{config.seed}"
