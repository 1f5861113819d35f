"""Checkpoints: model, optimiser, RNG state, epoch and early-stopping state in one file, written
atomically (temporary file, then rename), loaded with ``weights_only=True``; and the rule for
resuming from one (``resume_state``: the same experiment, only RESUMABLE_CHANGES may differ).

Everything random in training draws from torch's generators (the samplers seed their own per
epoch), so the torch CPU (and CUDA) RNG states are all that is needed to resume bit-exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from roam_graph.atomic import atomic_path
from roam_graph.data.errors import DataError
from roam_graph.data.textfile import read_text
from roam_graph.model.contract import KGModel
from roam_graph.training.config import ExperimentConfig

#: Settings that may differ between a run and its ``--resume`` (they do not change the past).
RESUMABLE_CHANGES = ("epochs", "patience", "eval_every")


def save_checkpoint(path: Path, model: KGModel, optimiser: torch.optim.Optimizer,
                    epoch: int, progress: dict[str, Any]) -> None:
    """``progress``: ``TrainingProgress.to_state()``, plain values (training/progress.py)."""
    state = {
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "epoch": epoch,
        "progress": progress,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    if not Path(path).is_file():
        raise DataError(f"{path}: no checkpoint to resume from (run without --resume first)")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which file, not a pickle trace
        raise DataError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") \
            from None


def restore(state: dict[str, Any], model: KGModel,
            optimiser: torch.optim.Optimizer | None = None) -> None:
    model.load_state_dict(state["model"])
    if optimiser is not None:
        optimiser.load_state_dict(state["optimiser"])
    torch.set_rng_state(state["rng_cpu"].cpu())
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["rng_cuda"]])


def check_resumable(saved: dict[str, Any], current: ExperimentConfig, path: Path) -> None:
    """A resumed run must be the same experiment; only RESUMABLE_CHANGES may differ. A setting
    the saved run does not know was added to roam-graph after it started; its default keeps what
    the code did then, so it is not a difference (as for reusing a finished run)."""
    now = json.loads(json.dumps(current.to_dict()))   # tuples as the saved lists
    saved = json.loads(json.dumps(saved))
    for key in ("graph", "seed"):
        if saved.get(key) != now.get(key):
            raise DataError(f"{path}: --resume with a different {key} than the saved run "
                            f"({saved.get(key)!r} vs {now.get(key)!r})")
    model_changes = _changed(saved.get("model", {}), now["model"])
    if model_changes:
        raise DataError(f"{path}: --resume with a different model than the saved run ("
                        + "; ".join(f"{k}: {saved['model'][k]!r} -> {now['model'][k]!r}"
                                    for k in model_changes) + ")")
    changed = [k for k in _changed(saved["training"], now["training"])
               if k not in RESUMABLE_CHANGES]
    if changed:
        raise DataError(f"{path}: --resume with different training settings {changed}; only "
                        f"{', '.join(RESUMABLE_CHANGES)} may change")


def _changed(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The keys both know whose values differ, in the saved order."""
    return [k for k, v in saved.items() if k in now and now[k] != v]


def resume_state(out: Path, config: ExperimentConfig, device: torch.device,
                 log: Callable[[str], None]) -> dict[str, Any] | None:
    """The checkpoint a resumed run continues from, checked to be the same experiment; None for
    a run that stopped during its first epoch (``config.json`` but no ``last.pt`` yet): it
    starts again at epoch 1, which gives what an uninterrupted run gives."""
    if not (out / "last.pt").is_file() and (out / "config.json").is_file():
        check_resumable(_saved_config(out / "config.json"), config, out / "config.json")
        log(f"no last.pt in {out}: the run stopped during its first epoch; starting at epoch 1")
        return None
    state = load_checkpoint(out / "last.pt", device)
    # checked before restoring: a dense checkpoint has no state for a large-graph optimiser
    check_resumable(state["progress"]["config"], config, out / "last.pt")
    log(f"resuming after epoch {state['epoch']} from {out / 'last.pt'}")
    return state


def _saved_config(path: Path) -> dict[str, Any]:
    try:
        saved = json.loads(read_text(path))
    except ValueError:
        saved = None
    if not isinstance(saved, dict) or not isinstance(saved.get("training"), dict):
        raise DataError(f"{path}: not a configuration written by run.py; use another --out, or "
                        f"delete the folder to start again")
    return saved
