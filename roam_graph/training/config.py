"""Experiment configuration: ``configs/<graph>.yaml`` (data) <- command-line overrides.

An experiment is ``graph + model settings + training settings + evaluation settings``; the
resolved configuration is written next to the results so any run can be repeated exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from roam_graph.data.errors import DataError
from roam_graph.graph.prepare import PrepareOptions
from roam_graph.model.config import ModelConfig, resolve_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
REGIMES: tuple[str, ...] = ("1-n", "negative-sampling")
#: Candidate chunk of evaluation in large-graph mode when none is configured: the fastest of
#: those measured on CPU (bench/chunked_eval.py, docs/SCALING.md); raise it on a GPU.
LARGE_GRAPH_CANDIDATE_CHUNK = 8192


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 100
    batch_size: int = 1024
    lr: float = 1e-3
    regime: str = "1-n"                 # 1-n (K-vs-all, as TuckER) | negative-sampling
    label_smoothing: float = 0.1
    loss: str = "bce"                   # bce (Eq. 10) | softmax (cross-entropy, faster start)
    negatives: int = 64                 # k per positive (negative-sampling)
    negative_strategy: str = "uniform"  # see roam_graph.sampling
    eval_every: int = 10                # epochs between validation evaluations
    patience: int = 10                  # evaluations without improvement before stopping
    max_grad_norm: float | None = None
    num_workers: int = 0
    # large-graph mode (docs/SCALING.md): negative sampling only, sparse entity-table gradients
    # with SparseAdam, so a step's cost does not grow with the number of entities
    large_graph: bool = False


@dataclass(frozen=True)
class EvaluationConfig:
    batch_size: int = 256
    # score candidates in chunks of this many entities (None: all at once); memory is then
    # bounded by batch_size x candidate_chunk scores, ranks are identical (docs/SCALING.md)
    candidate_chunk: int | None = None


@dataclass(frozen=True)
class ExperimentConfig:
    graph: str = "synthetic"
    source: str | None = None
    data_dir: str | None = None
    text_encoder: str = "none"
    seed: int = 0
    device: str = "auto"
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model"]["modalities"] = list(self.model.modalities)
        return data


def _typed(section: type, values: dict[str, Any], origin: str) -> dict[str, Any]:
    known = {f.name for f in fields(section)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise DataError(f"{origin}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    return values


def default_config_path(graph: str) -> Path | None:
    path = CONFIG_DIR / f"{graph}.yaml"
    return path if path.is_file() else None


def load_config(path: Path | None, overrides: dict[str, Any] | None = None,
                graph: str | None = None) -> ExperimentConfig:
    """Read a YAML config (or defaults), then apply overrides.

    ``overrides`` keys are ``graph``, ``seed``, ... for the top level and ``model.dim``,
    ``training.epochs``, ``evaluation.batch_size`` for the sections (None values are skipped)."""
    raw: dict[str, Any] = {}
    origin = str(path) if path else "defaults"
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as error:
            raise DataError(f"{path}: cannot read config ({error.strerror})") from None
        except yaml.YAMLError as error:
            raise DataError(f"{path}: not valid YAML: {error}") from None
        if not isinstance(raw, dict):
            raise DataError(f"{path}: a config must be a mapping of keys to values")
    sections = {name: dict(raw.pop(name, None) or {})
                for name in ("model", "training", "evaluation")}
    top = _typed(ExperimentConfig, raw, origin)
    if graph is not None:
        top["graph"] = graph
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        target = sections[section] if section else top
        target[name] = value
    _typed(ModelConfig, sections["model"], f"{origin} [model]")
    _typed(TrainingConfig, sections["training"], f"{origin} [training]")
    _typed(EvaluationConfig, sections["evaluation"], f"{origin} [evaluation]")
    model_settings = dict(sections["model"])
    if "modalities" in model_settings:
        model_settings["modalities"] = tuple(model_settings["modalities"])
    try:
        model = resolve_config(model_settings.pop("model", "roam"),
                               model_settings.pop("variant", "full"), **model_settings)
    except ValueError as error:
        raise DataError(f"{origin}: {error}") from None
    training = TrainingConfig(**sections["training"])
    check_training(training, origin)
    evaluation = EvaluationConfig(**sections["evaluation"])
    check_evaluation(evaluation, origin)
    if training.large_graph and evaluation.candidate_chunk is None:
        evaluation = replace(evaluation, candidate_chunk=LARGE_GRAPH_CANDIDATE_CHUNK)
    return ExperimentConfig(**{k: v for k, v in top.items()
                               if k not in ("model", "training", "evaluation")},
                            model=model, training=training, evaluation=evaluation)


def check_training(training: TrainingConfig, origin: str) -> None:
    if training.regime not in REGIMES:
        raise DataError(f"{origin}: regime {training.regime!r} is not one of {', '.join(REGIMES)}")
    for name in ("epochs", "batch_size", "eval_every", "patience", "negatives"):
        if getattr(training, name) < 1:
            raise DataError(f"{origin}: {name} must be >= 1, got {getattr(training, name)}")
    if training.loss not in ("bce", "softmax"):
        raise DataError(f"{origin}: loss {training.loss!r} is not one of bce, softmax")
    if training.lr <= 0:
        raise DataError(f"{origin}: lr must be > 0, got {training.lr}")
    if not 0 <= training.label_smoothing < 1:
        raise DataError(f"{origin}: label_smoothing must be in [0, 1)")
    if training.large_graph and training.regime != "negative-sampling":
        raise DataError(f"{origin}: large_graph (--large-graph) trains with negative sampling "
                        f"only, but regime is {training.regime!r} (--training): 1-N scores every "
                        f"entity for every query, so its steps grow with the number of entities")


def check_evaluation(evaluation: EvaluationConfig, origin: str) -> None:
    if evaluation.batch_size < 1:
        raise DataError(f"{origin}: evaluation batch_size must be >= 1, got "
                        f"{evaluation.batch_size}")
    chunk = evaluation.candidate_chunk
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int)
                              or chunk < 1):
        raise DataError(f"{origin}: candidate_chunk (--candidate-chunk) must be a positive "
                        f"integer or null, got {chunk!r}")


def with_seed(config: ExperimentConfig, seed: int) -> ExperimentConfig:
    return replace(config, seed=seed)


def prepare_options(config: ExperimentConfig, download: bool = False) -> PrepareOptions:
    """What ``prepare_graph`` needs to load the graph a configuration names; ``download``:
    fetch a registered graph's files on first use (``PrepareOptions.fetch_missing``)."""
    return PrepareOptions(config.graph, Path(config.source) if config.source else None,
                          Path(config.data_dir) if config.data_dir else None,
                          config.text_encoder, fetch_missing=download)


SECTIONS = ("", "model", "training", "evaluation")


def parse_settings(items: list[str]) -> dict[str, object]:
    """``--set model.expert_form=residual`` -> ``{"model.expert_form": "residual"}`` (YAML
    values: numbers, booleans and lists are typed)."""
    settings: dict[str, object] = {}
    for item in items:
        key, separator, value = item.partition("=")
        section = key.strip().rpartition(".")[0]
        if not separator or not key.strip() or section not in SECTIONS:
            raise DataError(f"--set {item!r}: expected KEY=VALUE with KEY a top-level key or "
                            "model.*, training.*, evaluation.*, e.g. model.expert_form=residual")
        try:
            settings[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise DataError(f"--set {item!r}: {value!r} is not a valid YAML value") from None
    return settings


#: The model widths ``--dim`` (and ``dim=`` of the Python API) set together.
WIDTHS = ("dim", "relation_dim", "expert_hidden", "cost_hidden")


def width_overrides(dim: int | None) -> dict[str, int | None]:
    """``--dim N``: one number for every model width (embedding, relation, expert hidden,
    gating hidden), so that a smaller model stays balanced."""
    return {f"model.{name}": dim for name in WIDTHS}


def keyword_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Python keywords -> ``load_config`` override keys: top-level fields as they are, ``dim``
    as ``--dim`` (an explicit ``relation_dim`` etc. still wins), any other name in the first
    section that has it (model, training, evaluation: ``batch_size`` is the training batch).
    Dotted keys (``evaluation.batch_size``) pass through; paths become text."""
    sections = {"model": ModelConfig, "training": TrainingConfig, "evaluation": EvaluationConfig}
    section_fields = {name: {f.name for f in fields(kind)} for name, kind in sections.items()}
    top = {f.name for f in fields(ExperimentConfig)} - set(sections)
    settings: dict[str, Any] = width_overrides(values["dim"]) if "dim" in values else {}
    for key, value in values.items():
        if key == "dim":
            continue
        section = next((name for name, names in section_fields.items() if key in names), None)
        if "." not in key and key not in top and section is None:
            known = sorted(top.union(*section_fields.values()))
            raise DataError(f"unknown setting {key!r}; known: {', '.join(known)}")
        # paths as text: the config is saved as JSON and inside weights-only checkpoints
        settings[key if "." in key or key in top else f"{section}.{key}"] = \
            str(value) if isinstance(value, Path) else value
    return settings


def default_out(config: ExperimentConfig) -> Path:
    """Where a run goes without ``--out``: ``runs/<graph>/<model>-<variant>/seed<S>``."""
    model = config.model
    return Path("runs") / config.graph / f"{model.model}-{model.variant}" / f"seed{config.seed}"

