"""Run folders: resolve a run's configuration, train it or reuse it, read it back, load its model.

One place for what the experiment suites, the sampling study, the search, the worker process, the
Python API, ``roam predict`` and the DistDGL trainer do with a run folder (its files:
docs/training.md, "Output files"):

- ``resolve_run_config``: a base configuration with overrides, checked like a config file;
- ``train_or_reuse``: a finished run (``metrics.json``) is reused only if it was made with the same
  settings (``setting_changes``), an interrupted one (``last.pt``) is resumed, anything else
  trained; ``train_saved`` trains a saved configuration in this process (the worker);
- ``read_metrics``, ``read_run_history``: what a run wrote;
- ``load_trained_model``: the selected model of a run, for the graph it was trained on.

It lives in the training layer, below the experiments and the API, so that every caller (the
DistDGL trainer included) can use it without an import running back up.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from roam_graph.data.errors import DataError
from roam_graph.data.textfile import read_text
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.graph.prepare import prepare_graph
from roam_graph.model import KGModel, build_model
from roam_graph.model.config import settings_read_by
from roam_graph.training.checkpoint import load_checkpoint
from roam_graph.training.config import ExperimentConfig, load_config, prepare_options
from roam_graph.training.reports import read_history
from roam_graph.training.trainer import run_training

Log = Callable[[str], None]
#: ``train(config, kg, out, resume)``: how ``train_or_reuse`` trains (in this process by default,
#: in a worker process for the suites).
Train = Callable[[ExperimentConfig, MultimodalKG, Path, bool], None]
#: A run folder: ``finished`` (metrics.json), ``interrupted`` (last.pt), or ``new``.
RunState = Literal["finished", "interrupted", "new"]
SECTIONS = ("model", "training", "evaluation")
#: Top-level settings that change what a run computes (not where its files live or its device).
COMPARED_TOP_LEVEL = ("graph", "seed", "text_encoder")
#: How many differing settings a refusal names.
NAMED_CHANGES = 4


def _silent(_: str) -> None:
    pass


# -- configuration --------------------------------------------------------------------------------
def config_settings(config: ExperimentConfig, model_keys: frozenset[str] | None = None
                    ) -> dict[str, Any]:
    """``config`` as ``load_config`` override keys (``seed``, ``model.dim``, ...); with
    ``model_keys``, only those model settings (the others are then resolved again)."""
    data = config.to_dict()
    settings: dict[str, Any] = {k: v for k, v in data.items() if k not in SECTIONS}
    for section in SECTIONS:
        settings.update({f"{section}.{k}": v for k, v in data[section].items()
                         if section != "model" or model_keys is None or k in model_keys})
    return settings


def resolve_run_config(base: ExperimentConfig | None, overrides: Mapping[str, Any],
                       seed: int | None = None, *, model_keys: frozenset[str] | None = None,
                       origins: dict[str, str] | None = None) -> ExperimentConfig:
    """``base`` (the defaults when None; only ``model_keys`` of its model settings when given)
    <- ``overrides`` (``load_config`` keys) <- ``seed``, validated like a config file; ``origins``
    names the flag behind a key in errors."""
    settings = {} if base is None else config_settings(base, model_keys)
    layered = {**settings, **overrides, **({} if seed is None else {"seed": seed})}
    return load_config(None, layered, origins=origins)


def read_run_config(folder: Path, overrides: Mapping[str, Any] | None = None
                    ) -> ExperimentConfig:
    """A run folder's ``config.json`` with ``overrides`` (``data_dir`` and ``source`` when the
    graph's files moved)."""
    if not (Path(folder) / "config.json").is_file():
        raise DataError(f"{folder}: no config.json; is this the folder of a finished run?")
    return load_config(Path(folder) / "config.json", dict(overrides or {}))


# -- the same-settings rule -----------------------------------------------------------------------
def compared_model_keys(model: str) -> frozenset[str]:
    """The model settings that decide whether a finished run of ``model`` is the same run: the
    ones it reads (a Tucker run is reused whatever ``expert_form`` says)."""
    return settings_read_by(model)


def setting_changes(saved: Mapping[str, Any], now: Mapping[str, Any]
                    ) -> tuple[list[str], list[str]]:
    """``(differences, unknown)`` between a saved ``config.json`` and the configuration now
    (both as ``to_dict`` gives them): ``"training.epochs: 1 -> 2"`` for every compared setting
    that differs, and the compared settings the saved run does not know (added to roam-graph
    after it ran: it used what the code did then, so they are not differences). A setting the
    saved run has and the code no longer knows is not compared."""
    differences, unknown = [], []
    for section in SECTIONS:
        for key in _compared_keys(section, now):
            value = now[section][key]
            if key not in saved.get(section, {}):
                unknown.append(f"{section}.{key}")
            elif saved[section][key] != value:
                differences.append(f"{section}.{key}: {saved[section][key]!r} -> {value!r}")
    differences += [f"{key}: {saved.get(key)!r} -> {now[key]!r}" for key in COMPARED_TOP_LEVEL
                    if saved.get(key) != now[key]]
    return differences, unknown


def _compared_keys(section: str, now: Mapping[str, Any]) -> list[str]:
    """The keys of ``section`` that decide whether a run is the same: every training and
    evaluation setting, the model settings of ``compared_model_keys`` and the model name."""
    if section != "model":
        return list(now[section])
    compared = compared_model_keys(now["model"]["model"]) | {"model"}
    return [key for key in now["model"] if key in compared]


def check_same_settings(out: Path, config: ExperimentConfig, log: Log = print) -> None:
    """A finished run is reused only if it was made with exactly these settings; a setting the
    saved run does not know is reported, not refused."""
    try:
        saved = json.loads(read_text(out / "config.json"))
    except (DataError, ValueError):
        raise DataError(f"{out}: metrics.json without a readable config.json; delete the "
                        "folder to run it again") from None
    differences, unknown = setting_changes(saved, json.loads(json.dumps(config.to_dict())))
    if unknown:
        log(f"note: {out} was made before setting(s) {', '.join(unknown)} existed; "
            "reused as it is")
    if differences:
        more = len(differences) - NAMED_CHANGES
        named = "; ".join(differences[:NAMED_CHANGES]) + (f"; {more} more" if more > 0 else "")
        raise DataError(f"{out}: holds a finished run with other settings ({named}); use "
                        "another --out, or delete the folder to run it again")


# -- training -------------------------------------------------------------------------------------
def run_state(out: Path) -> RunState:
    if (out / "metrics.json").is_file():
        return "finished"
    return "interrupted" if (out / "last.pt").is_file() else "new"


def train_here(config: ExperimentConfig, kg: MultimodalKG, out: Path, resume: bool, *,
               train_triples: torch.Tensor | None = None, log: Log | None = None,
               progress: bool = False) -> None:
    """Train in this process (``train_triples``: a sampled subgraph of train); ``log`` gets the
    per-evaluation lines (none by default)."""
    run_training(config, kg, out, resume=resume, log=log or _silent, progress=progress,
                 train_triples=train_triples)


def train_or_reuse(config: ExperimentConfig, kg: MultimodalKG, out: Path, *,
                   train: Train = train_here, log: Log = print, label: str = "") -> RunState:
    """Reuse the finished run in ``out`` if it has these settings (``check_same_settings``),
    resume an interrupted one, or train; return what ``out`` held. Log lines start with
    ``label``."""
    state = run_state(out)
    if state == "finished":
        check_same_settings(out, config, lambda line: log(label + line))
        log(f"{label}finished earlier in {out}, not repeated")
    else:
        log(f"{label}resuming the interrupted run in {out}" if state == "interrupted"
            else f"{label}training -> {out}")
        train(config, kg, out, state == "interrupted")
    return state


def train_saved(spec: Path, out: Path, resume: bool, log: Log = print) -> None:
    """Train the configuration saved in ``spec`` (``config.json`` layout) into ``out``, the
    graph read from the preparation cache."""
    config = load_config(spec)
    kg = prepare_graph(prepare_options(config)).kg
    train_here(config, kg, out, resume, log=log)


# -- reading a run --------------------------------------------------------------------------------
def read_metrics(out: Path) -> dict[str, Any]:
    """``metrics.json`` of a finished run (the test metrics of the selected model, ...)."""
    path = out / "metrics.json"
    text = read_text(path)  # a DataError naming the file when it is missing or unreadable
    try:
        return json.loads(text)
    except ValueError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None


def read_run_history(out: Path) -> list[dict[str, float]]:
    """``history.csv``: one row per epoch, empty cells left out ([] before the first epoch)."""
    return read_history(out / "history.csv")


def selected_checkpoint(run: Path) -> tuple[Path, str | None]:
    """The checkpoint to inspect in a run folder: ``best.pt`` (the model selected on validation),
    or ``last.pt`` with a note saying so when the run stopped before its first validation."""
    run = Path(run)
    if (run / "best.pt").is_file():
        return run / "best.pt", None
    if (run / "last.pt").is_file():
        return run / "last.pt", (f"note: {run} has no best.pt yet (it stopped before its first "
                                 f"validation); using last.pt, the latest epoch")
    raise DataError(f"{run}: no checkpoint yet (best.pt or last.pt): the run stopped before its "
                    f"first epoch ended; continue it with --resume")


def load_trained_model(run: Path, kg: MultimodalKG, device: str = "cpu",
                       checkpoint: Path | None = None) -> KGModel:
    """The selected model of a finished run folder (``config.json`` + ``best.pt``), in eval
    mode, for the graph it was trained on (another graph is refused: its ids mean other
    entities); ``checkpoint``: another file of the run (``selected_checkpoint``'s ``last.pt``)."""
    checkpoint = checkpoint or run / "best.pt"
    config = read_run_config(run)
    if not checkpoint.is_file():
        raise DataError(f"{run}: no {checkpoint.name}; is this the folder of a finished run?")
    if config.graph != kg.name:
        raise DataError(f"{run} was trained on graph {config.graph!r}, not {kg.name!r}")
    model = build_model(config.model, kg.num_entities, 2 * kg.num_relations, kg.modalities,
                        seed=config.seed)
    model.load_state_dict(load_checkpoint(checkpoint, torch.device(device))["model"])
    return model.to(device).eval()
