"""Checkpoints: model, optimiser, RNG state, epoch and early-stopping state in one file, written
atomically (temporary file, then rename), loaded with ``weights_only=True``.

Everything random in training draws from torch's generators (the samplers seed their own per
epoch), so the torch CPU (and CUDA) RNG states are all that is needed to resume bit-exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from roam_graph.atomic import atomic_path
from roam_graph.data.errors import DataError
from roam_graph.model.contract import KGModel


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
