"""Hyper-parameter search with Optuna: validation MRR only, pruned, stored, resumable.

``OUT/study.db`` (SQLite) holds the study; ``OUT/trials/<n>/`` each trial's run folder;
``OUT/trials.csv`` every trial's state, value and parameters; ``OUT/best.yaml`` the complete
configuration of the best trial, which ``roam run --config OUT/best.yaml`` trains again.

Decisions (docs/tuning.md):
- the objective is the validation MRR of the selected epoch; trials never evaluate test;
- after every validation a trial reports its MRR; Optuna's median pruner stops trials that fall
  behind the median of earlier trials at the same epoch;
- ``trials`` is the number of finished (complete or pruned) trials the study should hold, so
  the same command after an interruption runs only what is missing; a trial left running by a
  killed search is marked failed and its parameters are tried again first;
- a study is only resumed with the settings it was made with (base config and space).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from roam_graph.atomic import atomic_path, write_table
from roam_graph.data.errors import DataError
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.training.config import ExperimentConfig
from roam_graph.training.runs import resolve_run_config
from roam_graph.training.trainer import run_training
from roam_graph.tuning.space import SearchSpace

Log = Callable[[str], None]
STUDY = "roam-tune"


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise DataError("roam tune needs Optuna, which is not installed: "
                        "pip install 'roam-graph[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our log says what a trial did
    return optuna


@dataclass(frozen=True)
class SearchResult:
    best_number: int
    best_value: float
    best_params: dict[str, Any]
    finished: int
    ran: int


class PruningReporter:
    """A tracker (roam_graph.tracking) that reports each validation MRR to the trial and
    stops the run (``optuna.TrialPruned``) when the pruner says so."""

    def __init__(self, trial: Any, pruned: type[Exception]) -> None:
        self.trial, self.pruned = trial, pruned

    def log_evaluation(self, epoch: int, row: Mapping[str, Any]) -> None:
        self.trial.report(float(row["valid_mrr"]), epoch)
        if self.trial.should_prune():
            raise self.pruned(f"pruned at epoch {epoch}")

    def log_test(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def trial_config(base: ExperimentConfig, params: Mapping[str, Any]) -> ExperimentConfig:
    """The base configuration with a trial's parameters, checked as a config file is."""
    return resolve_run_config(base, params)


@dataclass(frozen=True)
class Search:
    """An open study and the storage it lives in."""
    study: Any
    storage: Any
    out: Path


def open_study(out: Path, base: ExperimentConfig, space: SearchSpace) -> Search:
    """Create ``OUT/study.db`` or reopen it; refuse one made with other settings."""
    optuna = require_optuna()
    out.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{(out / 'study.db').resolve()}")
    settings = json.loads(json.dumps({"base": base.to_dict(), "space": space.to_dict()}))
    exists = STUDY in {s.study_name for s in optuna.get_all_study_summaries(storage)}
    study = optuna.create_study(storage=storage, study_name=STUDY, direction="maximize",
                                load_if_exists=True,
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3))
    if not exists:
        study.set_user_attr("settings", settings)
    elif study.user_attrs.get("settings") != settings:
        raise DataError(f"{out / 'study.db'} holds a search with other settings (base config or "
                        "search space); use another --out to start a new search")
    return Search(study, storage, out)


def requeue_interrupted(search: Search) -> int:
    """Queue again the parameters of trials that did not end on their own: left running by a
    killed search (marked failed now; one search runs per study at a time) or stopped by
    Ctrl-C. Each is retried once."""
    optuna = require_optuna()
    state = optuna.trial.TrialState
    trials = search.study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    study_id = search.storage.get_study_id_from_name(STUDY)
    count = 0
    for trial in trials:
        if trial.state == state.RUNNING:
            trial_id = search.storage.get_trial_id_from_study_id_trial_number(study_id,
                                                                              trial.number)
            search.storage.set_trial_state_values(trial_id, state.FAIL)
        elif not (trial.state == state.FAIL and trial.user_attrs.get("interrupted")):
            continue
        if trial.number not in retried:
            search.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            count += 1
    return count


def finished_trials(study: Any) -> list[Any]:
    state = require_optuna().trial.TrialState
    return [t for t in study.get_trials(deepcopy=False)
            if t.state in (state.COMPLETE, state.PRUNED)]


def run_search(base: ExperimentConfig, space: SearchSpace, kg: MultimodalKG, out: Path,
               trials: int, log: Log = print) -> SearchResult:
    """Run trials until the study in ``out`` holds ``trials`` finished ones (module docstring);
    ``best.yaml`` and ``trials.csv`` are rewritten after every trial."""
    optuna = require_optuna()
    search = open_study(out, base, space)
    study = search.study
    requeued = requeue_interrupted(search)
    done = len(finished_trials(study))
    missing = max(trials - done, 0)
    log(f"study {out / 'study.db'}: {done} finished trial(s)"
        + (f", {requeued} interrupted one(s) queued again" if requeued else "")
        + (f"; running {missing} more" if missing else f"; --trials {trials} reached"))
    study.sampler = optuna.samplers.TPESampler(seed=base.seed + len(study.trials))

    def objective(trial: Any) -> float:
        params = space.suggest(trial)
        config = trial_config(base, params)
        try:
            result = run_training(config, kg, out / "trials" / str(trial.number),
                                  log=lambda _: None, progress=False, evaluate_test=False,
                                  tracker=PruningReporter(trial, optuna.TrialPruned))
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        trial.set_user_attr("selected_epoch", result.best_epoch)
        return float(result.validation["mrr"])

    def report(study: Any, trial: Any) -> None:
        params = ", ".join(f"{k.rpartition('.')[2]}={_short(v)}" for k, v in trial.params.items())
        outcome = (f"valid MRR {trial.value:.4f} (epoch {trial.user_attrs.get('selected_epoch')})"
                   if trial.state == optuna.trial.TrialState.COMPLETE else
                   f"pruned at epoch {trial.last_step}" if trial.state.name == "PRUNED"
                   else trial.state.name.lower())
        log(f"trial {trial.number}: {params} -> {outcome}")
        write_outputs(search, base)

    if missing:
        study.optimize(objective, n_trials=missing, callbacks=[report])
    write_outputs(search, base)
    complete = [t for t in finished_trials(study) if t.value is not None]
    if not complete:
        raise DataError(f"{out / 'study.db'}: no trial completed (all pruned); raise --trials")
    best = study.best_trial
    return SearchResult(best.number, float(best.value), dict(best.params),
                        len(finished_trials(study)), missing)


def write_outputs(search: Search, base: ExperimentConfig) -> None:
    """``trials.csv`` (all trials) and ``best.yaml`` (once a trial completed), atomically."""
    study = search.study
    write_table(search.out / "trials.csv", study.trials_dataframe(
        attrs=("number", "state", "value", "params", "user_attrs", "duration")))
    state = require_optuna().trial.TrialState
    if not any(t.state == state.COMPLETE for t in study.get_trials(deepcopy=False)):
        return
    best = study.best_trial
    config = trial_config(base, best.params).to_dict()
    header = (f"# Best of {len(finished_trials(study))} finished trials in "
              f"{search.out / 'study.db'}: trial {best.number}, validation MRR {best.value:.6f} "
              f"at epoch {best.user_attrs.get('selected_epoch')}.\n"
              f"# Train it again: roam run --config {search.out / 'best.yaml'}\n")
    with atomic_path(search.out / "best.yaml") as temporary:
        temporary.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
