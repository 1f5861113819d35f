"""Training loop: Adam, validation every N epochs, early stopping on validation MRR, the best
checkpoint kept, test evaluated once at the selected checkpoint (never used for selection).

Determinism: every random draw comes from torch generators; samplers derive each epoch's order
from ``(seed, epoch)``; checkpoints hold the torch RNG states. On CPU the same seed gives the same
result, and a run resumed after epoch k ends exactly as the uninterrupted run.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from roam_graph.data.errors import DataError
from roam_graph.data.textfile import read_text
from roam_graph.evaluation import EvaluationResult, ModelScorer, build_filter, evaluate
from roam_graph.evaluation.metrics import relation_categories
from roam_graph.graph.answers import AnswerIndex
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model import build_model, total_loss
from roam_graph.model.diagnostics import diagnostic_queries, routing_diagnostics
from roam_graph.model.roam import RoamModel
from roam_graph.sampling import (
    EdgeBatchSampler,
    NegativeBatch,
    OneToNSampler,
    dense_targets,
    make_negative_sampler,
)
from roam_graph.tracking import Tracker
from roam_graph.training import distributed
from roam_graph.training.checkpoint import load_checkpoint, restore, save_checkpoint
from roam_graph.training.config import ExperimentConfig
from roam_graph.training.distributed import DistributedContext
from roam_graph.training.optimisers import clip_grad_norm, make_optimiser
from roam_graph.training.reports import write_config, write_history, write_metrics

Log = Callable[[str], None]
#: Settings that may differ between a run and its ``--resume`` (they do not change the past).
RESUMABLE_CHANGES = ("epochs", "patience", "eval_every")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DataError(f"--device {name}: CUDA is not available on this machine")
    return torch.device(name)


def seed_everything(seed: int, device: torch.device) -> None:
    """Seed every generator; on CPU also pick deterministic kernels: with two or more threads,
    some accumulating backward kernels otherwise sum in a varying order (measured: test MRR
    0.00681 vs 0.00579 for two identical 1-epoch runs)."""
    random.seed(seed)
    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)


def make_sampler(config: ExperimentConfig, kg: MultimodalKG,
                 triples: torch.Tensor | None = None, context: DistributedContext | None = None
                 ) -> OneToNSampler | EdgeBatchSampler:
    """1-N query batches, or edge batches turned into ``NegativeBatch``es; in a distributed run,
    this rank's shard with ``batch_size // world_size`` per step (docs/distributed.md)."""
    training = config.training
    batch_size = training.batch_size if context is None else \
        distributed.per_rank_batch_size(training.batch_size, context.world_size)
    if training.regime == "1-n":
        sampler: OneToNSampler | EdgeBatchSampler = OneToNSampler.from_kg(
            kg, batch_size, triples=triples, seed=config.seed, num_workers=training.num_workers)
    else:
        negatives = make_negative_sampler(training.negative_strategy, kg, training.negatives,
                                          triples=triples, seed=config.seed)
        sampler = EdgeBatchSampler.from_kg(kg, batch_size, triples=triples, seed=config.seed,
                                           num_workers=training.num_workers, transform=negatives)
    return sampler if context is None else sampler.shard(context.rank, context.world_size)


def batch_inputs(batch: Any, label_smoothing: float, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``(heads, relations, candidates or None, targets)`` on ``device``."""
    queries = batch.queries.to(device, non_blocking=True)
    if isinstance(batch, NegativeBatch):
        candidates = batch.expanded().to(device, non_blocking=True)
        targets = torch.zeros(candidates.shape, device=device)
        targets[:, 0] = 1.0
        return queries[:, 0], queries[:, 1], candidates, targets
    targets = dense_targets(batch, label_smoothing).to(device, non_blocking=True)
    return queries[:, 0], queries[:, 1], None, targets


def train_epoch(model: nn.Module, sampler: Any, optimiser: torch.optim.Optimizer,
                config: ExperimentConfig, device: torch.device,
                scaler: torch.cuda.amp.GradScaler | None, progress: bool,
                context: DistributedContext | None = None) -> dict[str, float]:
    """One pass over the sampler; loss sums stay on the device until the epoch ends. In a
    distributed run ``model`` is the DDP wrapper (its backward all-reduces the gradients) and
    the returned losses and throughput are over all ranks."""
    model.train()
    sums = torch.zeros(3, device=device)
    started, seen = time.perf_counter(), 0
    bar = tqdm(total=len(sampler), desc=f"epoch {sampler.epoch}", unit="batch",
               disable=not progress, leave=False)
    for batch in sampler:
        heads, relations, candidates, targets = batch_inputs(
            batch, config.training.label_smoothing, device)
        with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=scaler is not None):
            output = model(heads, relations, candidates)
            loss, parts = total_loss(output, targets, config.model.ot_weight,
                                     config.training.loss, config.model.ot_epsilon)
        optimiser.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimiser)
        else:
            loss.backward()
        if config.training.max_grad_norm:
            clip_grad_norm(model.parameters(), config.training.max_grad_norm)
        if scaler is not None:
            scaler.step(optimiser)
            scaler.update()
        else:
            optimiser.step()
        if context is not None:
            distributed.after_step(context, model, sampler.epoch, sampler.position)
        sums += torch.stack([parts["triple"].float(), parts["ot"].float(),
                             parts["critic"].float()])
        seen += len(heads)
        bar.update(1)
    bar.close()
    if context is not None:
        sums, seen = distributed.reduce_epoch(context, sums, seen)
    seconds = time.perf_counter() - started
    triple, ot, critic = (sums / max(len(sampler), 1)).tolist()
    return {"loss_triple": triple, "loss_ot": ot, "loss_routing": critic, "seconds": seconds,
            "queries_per_second": seen / max(seconds, 1e-9),
            "peak_memory_mb": peak_memory_mb(device)}


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA allocator peak on a GPU, else the process's peak resident set
    (so compare models in separate processes, as ``pipelines/experiments.py`` does)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource  # Unix only
    except ImportError:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def evaluate_split(model: nn.Module, kg: MultimodalKG, split: str, known: AnswerIndex,
                   categories: torch.Tensor, config: ExperimentConfig, device: torch.device,
                   progress: bool = False) -> EvaluationResult:
    """Filtered ranking of one split in both directions. All entities are encoded once; each
    query is then routed and scored on its own (its scores do not depend on the batch).
    With ``evaluation.candidate_chunk``, entities are encoded and scored chunk by chunk instead
    (evaluation/chunked.py): same ranks, memory bounded by batch x chunk."""
    model.eval()
    if config.evaluation.candidate_chunk is not None:
        return evaluate(ModelScorer(model, device), kg.triples(split), known, kg.num_relations,
                        batch_size=config.evaluation.batch_size, categories=categories,
                        progress=progress, candidate_chunk=config.evaluation.candidate_chunk)
    with torch.inference_mode():
        encoding = model.encode_entities()

        def score(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
            return model(heads.to(device), relations.to(device),
                         candidate_encoding=encoding).scores.float()

        return evaluate(score, kg.triples(split), known, kg.num_relations,
                        batch_size=config.evaluation.batch_size, categories=categories,
                        progress=progress)


@dataclass(frozen=True)
class RunResult:
    out: Path
    test: dict[str, Any]
    validation: dict[str, float]
    best_epoch: int
    last_epoch: int
    stopped_early: bool


def check_resumable(saved: dict[str, Any], current: ExperimentConfig, path: Path) -> None:
    """A resumed run must be the same experiment; only RESUMABLE_CHANGES may differ."""
    now = current.to_dict()
    for key in ("graph", "seed", "model"):
        if saved.get(key) != now.get(key):
            raise DataError(f"{path}: --resume with a different {key} than the saved run "
                            f"({saved.get(key)!r} vs {now.get(key)!r})")
    changed = [k for k, v in saved["training"].items()
               if now["training"].get(k) != v and k not in RESUMABLE_CHANGES]
    if changed:
        raise DataError(f"{path}: --resume with different training settings {changed}; only "
                        f"{', '.join(RESUMABLE_CHANGES)} may change")


def resume_state(out: Path, config: ExperimentConfig, device: torch.device, log: Log
                 ) -> dict[str, Any] | None:
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


def run_training(config: ExperimentConfig, kg: MultimodalKG, out: Path, resume: bool = False,
                 log: Log = print, progress: bool = True,
                 train_triples: torch.Tensor | None = None,
                 context: DistributedContext | None = None,
                 tracker: Tracker | None = None, evaluate_test: bool = True) -> RunResult:
    """Train, select on validation, test once; files go to ``out`` (docs/training.md: Output files).
    With ``context`` (distributed.py): DDP over its ranks; rank 0 alone evaluates, logs and
    writes files, and every rank returns rank 0's result. ``tracker`` (roam_graph.tracking)
    receives each evaluated history row and the test metrics; it observes, it never steers training
    (except by raising, as a pruning search does); the caller closes it. ``evaluate_test=False``
    (a search trial) ends after selection: no test evaluation, no metrics.json, empty test."""
    out.mkdir(parents=True, exist_ok=True)
    main = context is None or context.is_main
    log, progress = (log, progress) if main else (_silent, False)
    device = resolve_device(config.device) if context is None else context.device
    seed_everything(config.seed, device)
    model = build_model(config.model, kg.num_entities, 2 * kg.num_relations, kg.modalities,
                        seed=config.seed).to(device)
    if getattr(model, "dropped_modalities", ()):
        log(f"note: {', '.join(model.dropped_modalities)} not available on graph "
            f"{kg.name!r}; training with {', '.join(model.modality_names)}")
    optimiser = make_optimiser(model, config.training)  # before DDP: it may make tables sparse
    scaler = torch.cuda.amp.GradScaler() if device.type == "cuda" else None
    sampler = make_sampler(config, kg, train_triples, context)
    known = build_filter(kg)
    categories = relation_categories(kg.triples("train"), kg.num_relations)
    progress_state: dict[str, Any] = {"best_mrr": -math.inf, "best_epoch": 0, "bad_evals": 0,
                                      "history": [], "stopped_early": False}
    first_epoch = 1
    state = resume_state(out, config, device, log) if resume else None
    if state is not None:
        restore(state, model, optimiser)
        progress_state = state["progress"]
        first_epoch = state["epoch"] + 1
    progress_state["config"] = config.to_dict()
    if main:
        write_config(out, config)  # at the start: an interrupted run can be inspected
    training = config.training
    trainable = model if context is None else distributed.wrap_model(
        model, context, training.regime != "1-n", log)
    for epoch in range(first_epoch, training.epochs + 1):
        if progress_state["stopped_early"]:
            break
        sampler.set_epoch(epoch)
        stats = train_epoch(trainable, sampler, optimiser, config, device, scaler, progress,
                            context)
        # one history row per epoch; its validation columns stay empty unless evaluated
        row: dict[str, Any] = {"epoch": epoch, **stats}
        if main:
            progress_state["history"].append(row)
        evaluated = main and (epoch % training.eval_every == 0 or epoch == training.epochs)
        if evaluated:
            eval_started = time.perf_counter()
            valid = evaluate_split(model, kg, "valid", known, categories, config, device)
            row["valid_seconds"] = time.perf_counter() - eval_started
            row.update({f"valid_{k}": v for k, v in valid.headline.items()},
                       **_routing_columns(model, kg, device, progress_state))
            log(f"epoch {epoch}: loss {stats['loss_triple']:.4f} (ot {stats['loss_ot']:.4f}), "
                f"valid MRR {valid.headline['mrr']:.4f}, {stats['queries_per_second']:.0f} q/s")
            if valid.headline["mrr"] > progress_state["best_mrr"]:
                progress_state.update(best_mrr=valid.headline["mrr"], best_epoch=epoch,
                                      bad_evals=0, best_validation=dict(valid.headline))
                save_checkpoint(out / "best.pt", model, optimiser, epoch, progress_state)
            else:
                progress_state["bad_evals"] += 1
                if progress_state["bad_evals"] >= training.patience:
                    progress_state["stopped_early"] = True
                    log(f"early stop at epoch {epoch}: no better validation MRR for "
                        f"{training.patience} evaluations")
        if main:
            write_history(out / "history.csv", progress_state["history"])
            save_checkpoint(out / "last.pt", model, optimiser, epoch, progress_state)
        if evaluated and tracker is not None:  # after the files: a pruned run keeps this epoch
            tracker.log_evaluation(epoch, row)
        # rank 0 decides early stopping; the others wait here for its evaluation and checkpoint
        stopped = distributed.share(context, progress_state["stopped_early"])
        progress_state["stopped_early"] = stopped
    if context is not None:
        distributed.finish_training(context, model, out, log)
        if not main:
            return distributed.share(context, None)
    last_epoch = progress_state["history"][-1]["epoch"] if progress_state["history"] else 0
    if not evaluate_test:  # the test split stays unseen: selection data only
        return distributed.share(context, RunResult(
            out, {}, progress_state.get("best_validation", {}), progress_state["best_epoch"],
            last_epoch, progress_state["stopped_early"]))
    best = load_checkpoint(out / "best.pt", device)
    model.load_state_dict(best["model"])
    test = evaluate_split(model, kg, "test", known, categories, config, device,
                          progress=progress)
    if isinstance(model, RoamModel):  # the diagnostics of the selected model
        progress_state["routing"] = routing_diagnostics(
            model, diagnostic_queries(kg.triples("valid"), kg.num_relations), device).columns()
    write_metrics(out, test, kg.relation_names, progress_state)
    if tracker is not None:
        tracker.log_test(progress_state["best_epoch"], test.headline)
    result = RunResult(out, test.to_json(kg.relation_names), progress_state["best_validation"],
                       progress_state["best_epoch"], last_epoch, progress_state["stopped_early"])
    return distributed.share(context, result)


def _silent(_: str) -> None:
    pass


def _routing_columns(model: nn.Module, kg: MultimodalKG, device: torch.device,
                     progress_state: dict[str, Any]) -> dict[str, float]:
    """Routing diagnostics (model/diagnostics.py) on a fixed set of validation queries, both
    directions, for history.csv; the options chosen are kept to count changes next time."""
    if not isinstance(model, RoamModel):
        return {}
    queries = diagnostic_queries(kg.triples("valid"), kg.num_relations)
    previous = progress_state.get("routing_selection")
    found = routing_diagnostics(model, queries, device,
                                None if previous is None else torch.tensor(previous))
    progress_state["routing_selection"] = found.selected.tolist()
    return found.columns()
