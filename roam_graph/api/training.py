"""Train from Python: a config file and/or keyword settings -> a loaded ``TrainedRun``.

    run = train(graph="synthetic-tiny", out="runs/tiny", epochs=2, dim=16)
    run = train("configs/db15k.yaml", source="../shared/datasets/db15k", model="tucker")

Settings resolve as on the command line: ``configs/<graph>.yaml`` (or the given file) <-
keywords (``training/config.py: keyword_settings``: ``epochs``, ``lr``, ``num_groups``, ``dim``
for every width as ``--dim``, dotted ``settings={"evaluation.batch_size": 64}``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from roam_graph.api.trained import TrainedRun
from roam_graph.graph.prepare import prepare_graph
from roam_graph.tracking import tracking
from roam_graph.training.config import (
    default_config_path,
    default_out,
    keyword_settings,
    load_config,
    prepare_options,
)
from roam_graph.training.runs import load_trained_model
from roam_graph.training.trainer import resolve_device, run_training


def train(config: str | Path | None = None, *, graph: str | None = None,
          out: str | Path | None = None, resume: bool = False,
          log: Callable[[str], None] | None = None, progress: bool = False,
          tracker: str | None = None, download: bool = True,
          settings: dict[str, Any] | None = None,
          **keywords: Any) -> TrainedRun:
    """Train one run (selected on validation, tested once, files in ``out``: docs/training.md)
    and return it loaded. ``log=print`` shows the per-evaluation lines; nothing by default.
    ``tracker="tensorboard"`` also logs every evaluation there (roam_graph.tracking);
    ``download=False`` reports a registered graph's missing files instead of fetching them."""
    path = Path(config) if config is not None else default_config_path(graph or "synthetic")
    overrides = {**keyword_settings(keywords), **(settings or {})}
    resolved = load_config(path, overrides, graph=graph)
    say = log or (lambda _: None)
    kg = prepare_graph(prepare_options(resolved, download), log=say).kg
    folder = Path(out) if out is not None else default_out(resolved)
    with tracking(tracker, folder) as observer:
        run_training(resolved, kg, folder, resume=resume, log=say, progress=progress,
                     tracker=observer)
    device = resolve_device(resolved.device)
    return TrainedRun(folder, resolved, kg, load_trained_model(folder, kg, str(device)), device)
