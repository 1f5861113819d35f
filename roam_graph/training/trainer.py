"""Training loop: Adam, validation every N epochs, early stopping on validation MRR, the best
checkpoint kept, test evaluated once at the selected checkpoint (never used for selection).

Determinism: every random draw comes from torch generators; samplers derive each epoch's order
from ``(seed, epoch)``; checkpoints hold the torch RNG states. On CPU the same seed gives the same
result, and a run resumed after epoch k ends exactly as the uninterrupted run.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from roam_graph.data.errors import DataError
from roam_graph.evaluation import EvaluationResult, ModelScorer, build_filter, evaluate
from roam_graph.evaluation.metrics import relation_categories
from roam_graph.graph.answers import AnswerIndex
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model import KGModel, build_model, total_loss
from roam_graph.model.diagnostics import diagnostic_queries, routing_diagnostics
from roam_graph.model.roam import RoamModel
from roam_graph.sampling import ShuffledBatches
from roam_graph.tracking import Tracker
from roam_graph.training import distributed
from roam_graph.training.checkpoint import load_checkpoint, restore, resume_state, save_checkpoint
from roam_graph.training.config import ExperimentConfig
from roam_graph.training.distributed import DistributedContext
from roam_graph.training.optimisers import clip_grad_norm, make_optimiser
from roam_graph.training.precision import autocast, gradient_scaler, resolve_precision
from roam_graph.training.progress import EarlyStopping, TrainingProgress
from roam_graph.training.regimes import Regime, regime_for
from roam_graph.training.reports import write_config, write_history, write_metrics

Log = Callable[[str], None]


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


def make_sampler(regime: Regime, kg: MultimodalKG, triples: torch.Tensor | None = None,
                 context: DistributedContext | None = None) -> ShuffledBatches[Any]:
    """The regime's batches; in a distributed run, this rank's shard with
    ``batch_size // world_size`` per step (docs/distributed.md)."""
    batch_size = regime.config.training.batch_size
    if context is not None:
        batch_size = distributed.per_rank_batch_size(batch_size, context.world_size)
    sampler = regime.make_sampler(kg, batch_size, triples)
    return sampler if context is None else sampler.shard(context.rank, context.world_size)


def train_epoch(model: nn.Module, sampler: Any, regime: Regime,
                optimiser: torch.optim.Optimizer, config: ExperimentConfig, device: torch.device,
                scaler: torch.cuda.amp.GradScaler | None, progress: bool,
                context: DistributedContext | None = None,
                precision: torch.dtype = torch.float32) -> dict[str, float]:
    """One pass over the sampler; loss sums stay on the device until the epoch ends. In a
    distributed run ``model`` is the DDP wrapper (its backward all-reduces the gradients) and
    the returned losses and throughput are over all ranks."""
    model.train()
    sums = torch.zeros(3, device=device)
    started, seen = time.perf_counter(), 0
    bar = tqdm(total=len(sampler), desc=f"epoch {sampler.epoch}", unit="batch",
               disable=not progress, leave=False)
    for batch in sampler:
        parts, queries = train_step(model, batch, regime, optimiser, config, device, scaler,
                                    precision)
        if context is not None:
            distributed.after_step(context, model, sampler.epoch, sampler.position)
        sums += torch.stack([parts["triple"].float(), parts["ot"].float(),
                             parts["critic"].float()])
        seen += queries
        bar.update(1)
    bar.close()
    if context is not None:
        sums, seen = distributed.reduce_epoch(context, sums, seen)
    seconds = time.perf_counter() - started
    triple, ot, critic = (sums / max(len(sampler), 1)).tolist()
    return {"loss_triple": triple, "loss_ot": ot, "loss_routing": critic, "seconds": seconds,
            "queries_per_second": seen / max(seconds, 1e-9),
            "peak_memory_mb": peak_memory_mb(device)}


def train_step(model: nn.Module, batch: Any, regime: Regime, optimiser: torch.optim.Optimizer,
               config: ExperimentConfig, device: torch.device,
               scaler: torch.cuda.amp.GradScaler | None, precision: torch.dtype
               ) -> tuple[dict[str, torch.Tensor], int]:
    """One training step on ``batch``: the loss's detached parts (on the device) and the number
    of queries it trained on."""
    inputs = regime.inputs(batch, device)
    with autocast(device, precision):  # the losses then run in fp32
        output = model(inputs.heads, inputs.relations, inputs.candidates, groups=inputs.groups)
    loss, parts = total_loss(output, inputs.targets, config.model.ot_weight,
                             config.training.loss, config.model.ot_epsilon)
    optimiser_step(loss, model, optimiser, scaler, config.training.max_grad_norm)
    return parts, len(inputs.heads)


def optimiser_step(loss: torch.Tensor, model: nn.Module, optimiser: torch.optim.Optimizer,
                   scaler: torch.cuda.amp.GradScaler | None, max_grad_norm: float | None
                   ) -> None:
    """Backward, optional clipping, step; through ``scaler`` under fp16 autocast."""
    optimiser.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimiser)
    else:
        loss.backward()
    if max_grad_norm:
        clip_grad_norm(model.parameters(), max_grad_norm)
    if scaler is not None:
        scaler.step(optimiser)
        scaler.update()
    else:
        optimiser.step()


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


@dataclass
class Session:
    """One run in training: what the stages of ``run_training`` share. ``model`` is evaluated
    and checkpointed; ``trainable`` is what the steps train (the model, or its DDP wrapper)."""
    config: ExperimentConfig
    kg: MultimodalKG
    out: Path
    device: torch.device
    model: KGModel
    trainable: nn.Module
    optimiser: torch.optim.Optimizer
    precision: torch.dtype             # the autocast dtype of training steps (precision.py)
    regime: Regime
    sampler: ShuffledBatches[Any]
    known: AnswerIndex
    categories: torch.Tensor
    progress: TrainingProgress
    first_epoch: int
    context: DistributedContext | None
    log: Log
    #: fp16's gradient scaler, one for the whole run (its scale adapts across steps)
    scaler: torch.cuda.amp.GradScaler | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.scaler = gradient_scaler(self.precision)

    @property
    def main(self) -> bool:
        return self.context is None or self.context.is_main

    def result(self, test: dict[str, Any]) -> RunResult:
        stopping = self.progress.stopping
        return RunResult(self.out, test, dict(stopping.best_validation), stopping.best_epoch,
                         self.progress.last_epoch, stopping.stopped)


def run_training(config: ExperimentConfig, kg: MultimodalKG, out: Path, resume: bool = False,
                 log: Log = print, progress: bool = True,
                 train_triples: torch.Tensor | None = None,
                 context: DistributedContext | None = None,
                 tracker: Tracker | None = None, evaluate_test: bool = True) -> RunResult:
    """Train, select on validation, test once; files go to ``out`` (docs/training.md: Output
    files). With ``context`` (distributed.py): DDP over its ranks; rank 0 alone evaluates, logs
    and writes files, and every rank returns rank 0's result. ``tracker`` (roam_graph.tracking)
    receives each evaluated history row and the test metrics; it observes, it never steers
    training (except by raising, as a pruning search does); the caller closes it.
    ``evaluate_test=False`` (a search trial) ends after selection: no test evaluation, no
    metrics.json, empty test."""
    out.mkdir(parents=True, exist_ok=True)
    main = context is None or context.is_main
    log, progress = (log, progress) if main else (_silent, False)
    session = start_session(config, kg, out, resume, log, train_triples, context)
    for epoch in range(session.first_epoch, config.training.epochs + 1):
        if session.progress.stopping.stopped:
            break
        run_epoch(session, epoch, tracker, progress)
    if context is not None:
        distributed.finish_training(context, session.model, out, log)
        if not main:
            return distributed.share(context, None)
    if not evaluate_test:  # the test split stays unseen: selection data only
        return distributed.share(context, session.result({}))
    return distributed.share(context, test_selected_model(session, tracker, progress))


def start_session(config: ExperimentConfig, kg: MultimodalKG, out: Path, resume: bool,
                  log: Log, train_triples: torch.Tensor | None,
                  context: DistributedContext | None) -> Session:
    """Device, model, optimiser, regime and sampler, and the progress to continue from (a fresh
    one, or the checkpoint's with ``resume``); ``config.json`` is written at once, so that an
    interrupted run can be inspected."""
    device = resolve_device(config.device) if context is None else context.device
    seed_everything(config.seed, device)
    model = build_model(config.model, kg.num_entities, 2 * kg.num_relations, kg.modalities,
                        seed=config.seed).to(device)
    if model.dropped_modalities:
        log(f"note: {', '.join(model.dropped_modalities)} not available on graph "
            f"{kg.name!r}; training with {', '.join(model.modality_names)}")
    optimiser = make_optimiser(model, config.training)  # before DDP: it may make tables sparse
    precision = resolve_precision(config.training.precision, device)
    regime = regime_for(config)
    sampler = make_sampler(regime, kg, train_triples, context)
    known = build_filter(kg)
    categories = relation_categories(kg.triples("train"), kg.num_relations)
    progress = TrainingProgress(EarlyStopping(config.training.patience), config.to_dict())
    first_epoch = 1
    state = resume_state(out, config, device, log) if resume else None
    if state is not None:
        restore(state, model, optimiser)
        progress = TrainingProgress.from_state(state["progress"], config.training.patience)
        progress.config = config.to_dict()
        first_epoch = state["epoch"] + 1
    if context is None or context.is_main:
        write_config(out, config)
    trainable = model if context is None else distributed.wrap_model(
        model, context, regime.scores_given_candidates, log)
    return Session(config, kg, out, device, model, trainable, optimiser, precision, regime,
                   sampler, known, categories, progress, first_epoch, context, log)


def run_epoch(session: Session, epoch: int, tracker: Tracker | None, progress: bool) -> None:
    """Train one epoch; validate when due; write history.csv and last.pt (rank 0)."""
    session.sampler.set_epoch(epoch)
    session.model.begin_epoch(epoch, session.config.training.epochs)
    stats = train_epoch(session.trainable, session.sampler, session.regime, session.optimiser,
                        session.config, session.device, session.scaler, progress,
                        session.context, session.precision)
    # one history row per epoch; its validation columns stay empty unless evaluated
    row: dict[str, Any] = {"epoch": epoch, **stats}
    training = session.config.training
    evaluated = session.main and (epoch % training.eval_every == 0 or epoch == training.epochs)
    if session.main:
        session.progress.history.append(row)
    if evaluated:
        validate(session, epoch, row)
    if session.main:
        write_history(session.out / "history.csv", session.progress.history)
        save_checkpoint(session.out / "last.pt", session.model, session.optimiser, epoch,
                        session.progress.to_state())
    if evaluated and tracker is not None:  # after the files: a pruned run keeps this epoch
        tracker.log_evaluation(epoch, row)
    # rank 0 decides early stopping; the others wait here for its evaluation and checkpoint
    stopping = session.progress.stopping
    stopping.stopped = distributed.share(session.context, stopping.stopped)


def validate(session: Session, epoch: int, row: dict[str, Any]) -> None:
    """Validation MRR (and routing diagnostics) into ``row``; best.pt when it is the best."""
    started = time.perf_counter()
    valid = evaluate_split(session.model, session.kg, "valid", session.known,
                           session.categories, session.config, session.device)
    row["valid_seconds"] = time.perf_counter() - started
    row.update({f"valid_{k}": v for k, v in valid.headline.items()}, **routing_columns(session))
    session.log(f"epoch {epoch}: loss {row['loss_triple']:.4f} (ot {row['loss_ot']:.4f}), "
                f"valid MRR {valid.headline['mrr']:.4f}, {row['queries_per_second']:.0f} q/s")
    stopping = session.progress.stopping
    if stopping.observe(epoch, valid.headline):
        save_checkpoint(session.out / "best.pt", session.model, session.optimiser, epoch,
                        session.progress.to_state())
    elif stopping.stopped:
        session.log(f"early stop at epoch {epoch}: no better validation MRR for "
                    f"{stopping.patience} evaluations")


def test_selected_model(session: Session, tracker: Tracker | None, progress: bool
                        ) -> RunResult:
    """Load best.pt, evaluate the test split once, write metrics.json and ranks.pt."""
    model, kg = session.model, session.kg
    model.load_state_dict(load_checkpoint(session.out / "best.pt", session.device)["model"])
    test = evaluate_split(model, kg, "test", session.known, session.categories, session.config,
                          session.device, progress=progress)
    if isinstance(model, RoamModel):  # the diagnostics of the selected model
        session.progress.routing = routing_diagnostics(
            model, diagnostic_queries(kg.triples("valid"), kg.num_relations),
            session.device).columns()
    write_metrics(session.out, test, kg.relation_names, session.progress)
    if tracker is not None:
        tracker.log_test(session.progress.stopping.best_epoch, test.headline)
    return session.result(test.to_json(kg.relation_names))


def _silent(_: str) -> None:
    pass


def routing_columns(session: Session) -> dict[str, float]:
    """Routing diagnostics (model/diagnostics.py) on a fixed set of validation queries, both
    directions, for history.csv; the options chosen are kept to count changes next time."""
    if not isinstance(session.model, RoamModel):
        return {}
    queries = diagnostic_queries(session.kg.triples("valid"), session.kg.num_relations)
    previous = session.progress.routing_selection
    found = routing_diagnostics(session.model, queries, session.device,
                                None if previous is None else torch.tensor(previous))
    session.progress.routing_selection = found.selected.tolist()
    return found.columns()
