"""Run the rows of a suite, resumably: ``OUT/runs/<row>/seed<S>/`` per run.

A run whose ``metrics.json`` exists is finished and never repeated; one with a ``last.pt`` is
resumed from its last epoch; anything else starts afresh. By default each run trains in its own
process (``python -m roam_graph.experiments.worker``), so that a crash in one run does not end the
suite and peak memory is measured per run (Fig. 4); ``isolate=False`` trains in this process
(faster to start: the tests use it).
"""

from __future__ import annotations

import math
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from roam_graph.atomic import write_json
from roam_graph.data.errors import DataError
from roam_graph.evaluation.metrics import HEADLINE_KEYS
from roam_graph.experiments.suites import Row, Suite
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model.config import MODEL_DEFAULTS, VARIANTS, ModelConfig
from roam_graph.model.inputs import available_modalities
from roam_graph.training.config import ExperimentConfig
from roam_graph.training.runs import (
    read_metrics,
    read_run_history,
    resolve_run_config,
    run_state,
    train_here,
    train_or_reuse,
)

Log = Callable[[str], None]
REPO = Path(__file__).resolve().parents[2]
#: Routing diagnostics read from metrics.json into the tables (docs/model.md).
ROUTING_FIGURES = ("oracle_agreement", "routing_regret", "relation_group_mi_bits",
                   "relation_group_mi_permuted_bits")


@dataclass(frozen=True)
class RunRecord:
    """What one finished run contributes to a table (read back from its files)."""
    row: str
    seed: int
    out: Path
    metrics: dict[str, float]


def slug(label: str) -> str:
    """A folder name for a row label: ``w/o Image (Struct + Txt)`` -> ``w-o-image-struct-txt``."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "row"


def row_config(base: ExperimentConfig, row: Row, seed: int) -> ExperimentConfig:
    """The base configuration with the row's overrides, validated like a config file.

    A row inherits the base's widths, routing settings and training settings, but its model and
    variant name come from the row (default: the base's model, variant ``full``), so that the
    fields a variant resolves (expert layout, cost input, ...) are the row's, not the base's."""
    model = row.overrides.get("model.model", base.model.model)
    variant = row.overrides.get("model.variant", "full")
    return resolve_run_config(base, row.overrides, seed,
                              model_keys=inherited_model_fields(base.model, model, variant))


def inherited_model_fields(base: ModelConfig, model: str, variant: str) -> frozenset[str]:
    """The model settings a row of ``model`` / ``variant`` takes from the base config: all but
    those that a model or variant name resolves, the base's (they came with its name, not from
    the user) or the row's (they must come from the row). So a config file's ``routing`` reaches
    every row except one whose variant sets its own (TKSR), and a base with variant ``sep``
    does not hand its expert layout to the other rows."""
    resolved = {"variant", "modalities", *VARIANTS.get(base.variant, {}),
                *MODEL_DEFAULTS.get(base.model, {}), *VARIANTS.get(variant, {}),
                *MODEL_DEFAULTS.get(model, {})}
    return frozenset(f.name for f in fields(ModelConfig)) - resolved


def unavailable_reason(row: Row, config: ExperimentConfig, kg: MultimodalKG) -> str | None:
    """Why a row cannot run on this graph, or None: a row that asks for a modality the graph
    lacks (Table 5 without image features) would silently duplicate another row, so it is
    reported as not available instead. Rows that name no modalities use what the graph has."""
    if "model.modalities" not in row.overrides:
        return None
    try:
        _, dropped = available_modalities(tuple(config.model.modalities), kg.modalities)
    except ValueError:
        dropped = tuple(m for m in config.model.modalities if m != "structure")
    if dropped and config.model.model != "tucker":
        return f"no {', '.join(dropped)} features on {kg.name}"
    return None


def run_suite(suite: Suite, base: ExperimentConfig, kg: MultimodalKG, out: Path, runs: int = 1,
              isolate: bool = True, log: Log = print, only: Sequence[str] | None = None
              ) -> tuple[list[RunRecord], dict[str, str]]:
    """Train every (row, seed) not yet finished; return the finished runs and skipped rows.
    With ``only`` (row labels or their slugs), other rows are not trained, but their finished
    runs still enter the table (so parallel commands on disjoint rows build one table)."""
    records: list[RunRecord] = []
    skipped: dict[str, str] = {}
    wanted = None if only is None else {slug(name) for name in only}
    unknown = sorted((wanted or set()) - {slug(row.label) for row in suite.rows})
    if unknown:
        raise DataError(f"--rows: no row {', '.join(unknown)} in suite {suite.name!r}; rows: "
                        + ", ".join(slug(row.label) for row in suite.rows))
    for row in suite.rows:
        if wanted is not None and slug(row.label) not in wanted:
            records += finished_records(row, base, out, runs)
            continue
        reason = unavailable_reason(row, row_config(base, row, base.seed), kg)
        if reason:
            skipped[row.label] = reason
            log(f"{suite.name}: {row.label}: skipped ({reason})")
            continue
        for seed in range(base.seed, base.seed + runs):
            run_out = run_folder(out, row, seed)
            train_or_reuse(row_config(base, row, seed), kg, run_out, log=log,
                           label=f"{suite.name}: {row.label} seed {seed}: ",
                           train=lambda c, k, o, resume: train_one(c, k, o, resume, isolate))
            records.append(RunRecord(row.label, seed, run_out, read_run(run_out)))
    return records, skipped


def run_folder(out: Path, row: Row, seed: int) -> Path:
    """Where the run of ``row`` with ``seed`` lives: ``OUT/runs/<row slug>/seed<S>``."""
    return out / "runs" / slug(row.label) / f"seed{seed}"


def finished_records(row: Row, base: ExperimentConfig, out: Path, runs: int
                     ) -> list[RunRecord]:
    """The runs of ``row`` that are already finished (nothing is trained)."""
    found = []
    for seed in range(base.seed, base.seed + runs):
        run_out = run_folder(out, row, seed)
        if run_state(run_out) == "finished":
            found.append(RunRecord(row.label, seed, run_out, read_run(run_out)))
    return found


def train_one(config: ExperimentConfig, kg: MultimodalKG, out: Path, resume: bool,
              isolate: bool) -> None:
    """Train one run, in a worker process (``isolate``) or in this one."""
    if not isolate:
        train_here(config, kg, out, resume)
        return
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "spec.json"
    write_json(spec, config.to_dict())
    command = [sys.executable, "-m", "roam_graph.experiments.worker", str(spec), str(out)]
    if resume:
        command.append("--resume")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    with open(out / "run.log", "a", encoding="utf-8") as log_file:
        code = subprocess.call(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        tail = (out / "run.log").read_text(encoding="utf-8").strip().splitlines()[-5:]
        raise DataError(f"run in {out} failed with exit code {code}; last lines of "
                        f"{out / 'run.log'}:\n  " + "\n  ".join(tail))


def read_run(out: Path) -> dict[str, float]:
    """Headline test metrics + efficiency figures of one finished run.

    seconds_per_epoch: mean training time of an epoch; inference_seconds: mean time of one
    validation evaluation (both directions); peak_memory_mb: the run's peak (process RSS on CPU,
    CUDA allocator peak on GPU); routing_entropy: at the selected epoch (Fig. 2); the routing
    diagnostics of ``ROUTING_FIGURES`` (model/diagnostics.py) of the selected model."""
    metrics = read_metrics(out)
    result = {k: float(metrics[k]) for k in HEADLINE_KEYS}
    history = read_run_history(out)
    selected = metrics.get("selected_epoch")
    result.update(history_figures(history, selected))
    result["selected_epoch"] = float(selected or 0)
    routing = metrics.get("routing", {})       # diagnostics of the selected model (ROAM only)
    for key in ROUTING_FIGURES:
        result[key] = float(routing.get(key, math.nan))
    return result


def history_figures(history: Sequence[dict[str, float]], selected: int | None
                    ) -> dict[str, float]:
    def mean(key: str) -> float:
        values = [row[key] for row in history if key in row]
        return statistics.fmean(values) if values else float("nan")

    figures = {"seconds_per_epoch": mean("seconds"), "inference_seconds": mean("valid_seconds"),
               "peak_memory_mb": max((row.get("peak_memory_mb", float("nan"))
                                      for row in history), default=float("nan"))}
    at_selected = [row for row in history if row.get("epoch") == selected]
    figures["routing_entropy"] = (at_selected[0].get("routing_entropy", float("nan"))
                                  if at_selected else float("nan"))
    return figures
