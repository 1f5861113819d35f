"""Link-prediction training on a partitioned graph with DistDGL (docs/distributed-dgl.md).

Where the parameters live:
- entity embeddings: a ``DistEmbedding`` sharded like the graph's nodes (each server holds its
  partition's rows), updated sparsely by DistDGL's ``SparseAdam`` (only the rows a batch touched);
- relation embeddings and the scorer: ordinary torch modules, replicated in every trainer and
  kept identical by ``DistributedDataParallel`` (gloo) when there is more than one trainer.

The scorer is the paper's ``TuckerInteraction`` (Eq. 10) by default, with learned relation
vectors; ``scorer="distmult"`` (``s = <e_h, w_r, e_t>``, Yang et al. 2015) is the lighter option:
no dense core to synchronise, no dropout or batch norm. Both score over ``2R`` relations: head
prediction is tail prediction of the reciprocal relation ``r + R``, as everywhere in this
project. Training is structure-only negative sampling (BCE, uniform negatives); the multimodal
models (ROAM, MoMoK) are not supported in this mode (their encoders need every entity's features
at every step).

What it shares with ``run_training``: the configuration (``ExperimentConfig``, resolved by
``training.runs``; only the scorer and the entity table's learning rate are its own,
``DistOptions``), the seed scheme (``seed_everything``; batches and their negatives from the
samplers' ``(seed, epoch, batch)`` streams), the negative sampler and edge batches
(``roam_graph.sampling``), the Tucker interaction and the evaluator. What it keeps: the entity
table (a ``DistEmbedding``, not the models' ``nn.Embedding``), so the query side of the models
is built here, and its loss (the mean BCE of the positives plus that of the negatives).

Each trainer iterates over its share of the training edges (``edge_split``); all trainers take
the same number of steps per epoch (the largest share decides; shorter shares wrap around),
because each ``SparseAdam`` step and each DDP backward is collective.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from roam_graph.atomic import write_json
from roam_graph.data.errors import DataError
from roam_graph.evaluation import build_filter, evaluate
from roam_graph.evaluation.baselines import random_scorer_metrics
from roam_graph.graph import dgl_distributed as ddgl
from roam_graph.graph.mmkg import MultimodalKG, reciprocal_triples
from roam_graph.graph.prepare import PrepareOptions
from roam_graph.model.config import ModelConfig
from roam_graph.model.interaction import TuckerInteraction, relation_groups
from roam_graph.sampling import (
    EdgeBatchSampler,
    NegativeBatch,
    NegativeSampler,
    UniformEntities,
    derive_seed,
)
from roam_graph.training.config import ExperimentConfig, width_overrides
from roam_graph.training.runs import resolve_run_config
from roam_graph.training.trainer import seed_everything

SCORERS = ("distmult", "tucker")
Log = Callable[[str], None]
#: The settings a DistDGL run takes from its flags (``load_config`` keys) and their defaults;
#: ``model.dim`` sets every width, as ``--dim`` does for ``roam run``.
DEFAULTS: dict[str, Any] = {"training.epochs": 20, "training.batch_size": 256, "model.dim": 64,
                            "training.negatives": 32, "training.lr": 0.01,
                            "evaluation.batch_size": 512, "seed": 0}
#: What DistDGL training is whatever the flags: structure-only negative sampling with BCE on CPU;
#: every positive comes with its reciprocal query, so only tails are corrupted (strategy
#: ``tail``). The model settings are the Tucker scorer's (widths, dropouts).
FIXED: dict[str, Any] = {"model.model": "tucker", "training.regime": "negative-sampling",
                         "training.negative_strategy": "tail", "training.loss": "bce",
                         "device": "cpu"}


@dataclass(frozen=True)
class DistOptions:
    """What only DistDGL training has beside the shared ``ExperimentConfig``: the scorer and the
    learning rate of the sharded entity table."""
    scorer: str = "tucker"
    sparse_lr: float = 0.02

    def check(self) -> None:
        if self.scorer not in SCORERS:
            raise DataError(f"--scorer {self.scorer!r}: choose one of {', '.join(SCORERS)}")
        if not (self.sparse_lr > 0 and math.isfinite(self.sparse_lr)):
            raise DataError(f"--sparse-lr must be a positive number, got {self.sparse_lr}")


@dataclass(frozen=True)
class Context:
    """This process's place in the run: rank among ``world`` trainers, partitions, mode."""

    rank: int
    world: int
    num_partitions: int
    mode: str  # standalone | distributed


@dataclass(frozen=True)
class Parts:
    """What a trainer trains: the sharded entity table and its sparse optimiser, the scorer
    (wrapped in DDP when there are several trainers) and its dense optimiser."""

    entities: ddgl.DistEmbedding
    sparse: ddgl.SparseAdam
    scorer: nn.Module
    model: nn.Module
    dense: torch.optim.Optimizer


def dist_config(graph: PrepareOptions, settings: Mapping[str, Any],
                origins: dict[str, str] | None = None) -> ExperimentConfig:
    """The shared configuration of a DistDGL run: ``DEFAULTS`` <- ``settings`` (None: not given)
    <- ``FIXED``, on the graph the partitions were made from, checked like a config file
    (``origins`` names the flag behind a key in errors)."""
    given = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    dim = given.pop("model.dim")
    files = {"graph": graph.graph, "source": None if graph.source is None else str(graph.source),
             "data_dir": None if graph.data_dir is None else str(graph.data_dir),
             "text_encoder": graph.text_encoder, "format": graph.format}
    return resolve_run_config(None, {**given, **width_overrides(dim), **files, **FIXED},
                              origins=origins)


def uniform_init(shape: tuple[int, ...], dtype: torch.dtype, scale: float,
                 seed: int) -> torch.Tensor:
    """Initial entity rows, ``U(-scale, scale)``. Module-level (not a lambda): in distributed mode
    DistDGL pickles it to the server that holds the rows."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) * 2 - 1).mul_(scale).to(dtype)


class DistMultScorer(nn.Module):
    """Query ``x = e_h * w_r``; ``s(h, r, t) = x . e_t`` (DistMult)."""

    def __init__(self, num_relations: int, dim: int) -> None:
        super().__init__()
        self.relations = nn.Embedding(num_relations, dim)
        nn.init.uniform_(self.relations.weight, -1.0, 1.0)

    def forward(self, heads: torch.Tensor, relation_ids: torch.Tensor) -> torch.Tensor:
        return heads * self.relations(relation_ids)


class TuckerScorer(nn.Module):
    """Query from the paper's ``TuckerInteraction`` (Eq. 10) with learned relation vectors: the
    query side of ``TuckerModel``, whose entity table here is the sharded ``DistEmbedding``."""

    def __init__(self, num_relations: int, model: ModelConfig) -> None:
        super().__init__()
        self.relations = nn.Embedding(num_relations, model.relation_dim)
        nn.init.xavier_normal_(self.relations.weight)
        self.tucker = TuckerInteraction(model.dim, model.relation_dim, model.input_dropout,
                                        model.hidden_dropout1, model.hidden_dropout2)

    def forward(self, heads: torch.Tensor, relation_ids: torch.Tensor) -> torch.Tensor:
        groups = relation_groups(relation_ids)
        return self.tucker.query(heads, self.relations(groups.unique), groups.inverse)


def make_scorer(name: str, num_relations: int, model: ModelConfig) -> nn.Module:
    """A scorer over ``num_relations`` (already doubled for reciprocals)."""
    return DistMultScorer(num_relations, model.dim) if name == "distmult" \
        else TuckerScorer(num_relations, model)


def check_mode(num_parts: int, config_path: Path) -> None:
    """Standalone DistDGL reads the graph in-process and handles one partition only."""
    if ddgl.is_standalone() and num_parts != 1:
        raise DataError(
            f"--partition-config {config_path}: {num_parts} partitions, but standalone mode "
            "(DGL_DIST_MODE unset or 'standalone') reads exactly one; partition with --parts 1, "
            "or start servers and trainers (docs/distributed-dgl.md)")


def init_torch_distributed() -> tuple[int, int]:
    """gloo process group: DistDGL's SparseAdam needs one even with a single trainer (then an
    in-memory store, no network); with several trainers the launcher's env (``MASTER_ADDR``,
    ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``) says where to meet."""
    dist = torch.distributed
    if not dist.is_initialized():
        if ddgl.is_standalone():
            dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
        else:
            missing = [v for v in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")
                       if v not in os.environ]
            if missing:
                raise DataError(f"distributed mode needs {', '.join(missing)} in the "
                                "environment (dgl's launch tool sets them; see "
                                "docs/distributed-dgl.md)")
            dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def run_dist_training(config: ExperimentConfig, options: DistOptions, graph_name: str,
                      part_config: Path, kg: MultimodalKG, out: Path, log: Log = print
                      ) -> dict | None:
    """Train on the DistGraph ``graph_name`` (``part_config``), evaluate filtered MRR on valid
    and test with ``roam_graph.evaluation`` and write ``out/metrics.json`` (rank 0 only; the
    metrics are returned there, ``None`` elsewhere). ``ddgl.initialize`` must have run."""
    options.check()
    graph, ctx = join_run(graph_name, part_config, kg)
    say = log if ctx.rank == 0 else _silent
    parts = build_parts(config, options, graph_name, ddgl.num_nodes(graph), kg.num_relations,
                        ctx.world)
    sampler = edge_batches(ddgl.local_edges(graph), ddgl.num_nodes(graph), kg.num_relations,
                           config, ctx.rank)
    steps = _steps_per_epoch(len(sampler))
    say(f"{ctx.world} trainer(s), {ctx.num_partitions} partition(s), {ctx.mode} mode; "
        f"{sampler.num_items} local train triples, {steps} steps per epoch, "
        f"scorer {options.scorer}")
    started = time.perf_counter()
    history = train_epochs(parts, sampler, steps, config.training.epochs, ctx.world, say)
    train_seconds = time.perf_counter() - started
    metrics = None
    if ctx.rank == 0:
        metrics = _evaluate(parts.scorer, parts.entities, graph, kg, config)
        triples = config.training.epochs * ctx.world * steps * config.training.batch_size
        metrics.update(graph=kg.name, mode=ctx.mode, trainers=ctx.world,
                       partitions=ctx.num_partitions,
                       config={**config.to_dict(), "dist": asdict(options)}, history=history,
                       train_seconds=train_seconds,
                       train_triples_per_second=triples / train_seconds)
        write_metrics(Path(out) / "metrics.json", metrics, log)
    if ctx.world > 1:
        torch.distributed.barrier()  # the others wait while rank 0 reads every shard
    return metrics


def _silent(_: str) -> None:
    pass


def join_run(graph_name: str, part_config: Path, kg: MultimodalKG
             ) -> tuple[ddgl.DistGraph, Context]:
    """Open the DistGraph, checked against ``kg``, and join the trainers' process group."""
    graph = ddgl.open_graph(graph_name, part_config)
    if ddgl.num_nodes(graph) != kg.num_entities:
        raise DataError(f"--partition-config {part_config}: {ddgl.num_nodes(graph)} nodes, but "
                        f"graph {kg.name!r} has {kg.num_entities} entities; re-partition it")
    rank, world = init_torch_distributed()
    if world != ddgl.num_trainers():
        raise DataError(f"torch.distributed has {world} processes but DistDGL "
                        f"{ddgl.num_trainers()} trainers; launch one torch process per trainer")
    mode = "standalone" if ddgl.is_standalone() else "distributed"
    return graph, Context(rank, world, ddgl.num_partitions(graph), mode)


def build_parts(config: ExperimentConfig, options: DistOptions, graph_name: str,
                num_nodes: int, num_relations: int, world: int) -> Parts:
    """The entity table and the scorer, initialised from ``config.seed`` as ``run_training``
    does (``seed_everything``): every trainer builds the same scorer."""
    seed_everything(config.seed, torch.device("cpu"))
    dim = config.model.dim
    entities = ddgl.make_embedding(num_nodes, dim, f"{graph_name}-entity",
                                   partial(uniform_init, scale=1 / math.sqrt(dim),
                                           seed=config.seed))
    scorer = make_scorer(options.scorer, 2 * num_relations, config.model)
    model = nn.parallel.DistributedDataParallel(scorer) if world > 1 else scorer
    return Parts(entities, ddgl.sparse_adam([entities], options.sparse_lr), scorer, model,
                 torch.optim.Adam(model.parameters(), lr=config.training.lr))


def edge_batches(edges: tuple[torch.Tensor, torch.Tensor, torch.Tensor], num_nodes: int,
                 num_relations: int, config: ExperimentConfig, rank: int) -> EdgeBatchSampler:
    """This trainer's edges in shuffled batches with their negatives, by the samplers' seed
    scheme: each epoch's order from ``(seed, epoch)``, each batch's negatives from its own
    generator, ``seed`` mixed with the rank so that trainers draw independently. A positive
    ``(h, r, t)`` gives the tail query ``(h, r)`` and the reciprocal head query ``(t, r + R)``,
    each with ``negatives`` uniform corruptions of its tail (ids of the DistGraph's order)."""
    negatives = NegativeSampler(config.training.negatives, num_relations,
                                UniformEntities(num_nodes), head_probability=None)
    return EdgeBatchSampler(torch.stack(edges, dim=1), config.training.batch_size,
                            seed=derive_seed(config.seed, rank),
                            transform=partial(both_directions, negatives=negatives,
                                              num_relations=num_relations))


def both_directions(positives: torch.Tensor, generator: torch.Generator,
                    negatives: NegativeSampler, num_relations: int) -> NegativeBatch:
    return negatives(reciprocal_triples(positives, num_relations), generator)


def train_epochs(parts: Parts, sampler: EdgeBatchSampler, steps: int, epochs: int, world: int,
                 say: Log) -> list[dict[str, float]]:
    """Every epoch, one history row each: the loss (mean over steps and trainers), seconds."""
    history = []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        loss = _mean_across(train_epoch(parts, sampler, steps, epoch), world)
        seconds = time.perf_counter() - started
        history.append({"epoch": epoch, "loss": loss, "seconds": seconds})
        say(f"epoch {epoch}/{epochs}: loss {loss:.4f} ({seconds:.2f} s, "
            f"{world * steps * sampler.batch_size / seconds:.0f} triples/s)")
    return history


def train_epoch(parts: Parts, sampler: EdgeBatchSampler, steps: int, epoch: int) -> float:
    """``steps`` steps, a share shorter than the longest one wrapping around; the mean loss."""
    order = sampler.epoch_order(epoch)
    order = order.repeat(math.ceil(steps * sampler.batch_size / len(order)))
    parts.model.train()
    total = 0.0
    for step in range(steps):
        loss = _step_loss(parts.model, parts.entities, sampler.batch_at(order, epoch, step))
        parts.dense.zero_grad()
        parts.sparse.zero_grad()  # without it DGL keeps every past batch's trace and reapplies it
        loss.backward()
        parts.sparse.step()
        parts.dense.step()
        total += float(loss)
    return total / steps


def write_metrics(path: Path, metrics: dict, log: Log) -> None:
    write_json(path, metrics)
    log(f"valid MRR {metrics['valid']['mrr']:.4f}, test MRR {metrics['test']['mrr']:.4f} "
        f"(random scorer {metrics['random_scorer']['mrr']:.4f}) -> {path}")


def _steps_per_epoch(local: int) -> int:
    """The same for every trainer: the largest local share (in batches) decides."""
    steps = torch.tensor([local])
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.all_reduce(steps, op=torch.distributed.ReduceOp.MAX)
    return int(steps)


def _step_loss(model: nn.Module, entities: ddgl.DistEmbedding, batch: NegativeBatch
               ) -> torch.Tensor:
    """BCE of each query's true tail against its negatives. Entity rows are pulled from the
    DistEmbedding once per step (unique ids), so SparseAdam sees each row once."""
    candidates = batch.expanded()
    ids, inverse = torch.unique(torch.cat([batch.queries[:, 0], candidates.flatten()]),
                                return_inverse=True)
    rows = entities(ids)
    n = len(batch)
    query = model(rows[inverse[:n]], batch.queries[:, 1])
    scores = torch.einsum("bd,bkd->bk", query, rows[inverse[n:]].view(n, candidates.shape[1], -1))
    return F.softplus(-scores[:, 0]).mean() + F.softplus(scores[:, 1:]).mean()


def _mean_across(value: float, world: int) -> float:
    if world == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(tensor)
    return float(tensor) / world


def all_entity_rows(entities: ddgl.DistEmbedding, graph: ddgl.DistGraph,
                    num_entities: int, chunk: int = 65536) -> torch.Tensor:
    """Every entity's row in OUR entity order (DistDGL renumbers nodes when partitioning)."""
    order = ddgl.entity_ids(graph)
    rows = torch.cat([ddgl.read_rows(entities, torch.arange(start, min(start + chunk,
                                                                       num_entities)))
                      for start in range(0, num_entities, chunk)])
    ours = torch.empty_like(rows)
    ours[order] = rows
    return ours


def _evaluate(scorer: nn.Module, entities: ddgl.DistEmbedding, graph: ddgl.DistGraph,
              kg: MultimodalKG, config: ExperimentConfig) -> dict:
    """Filtered ranks (both directions, realistic ties) on valid and test with our evaluator."""
    table = all_entity_rows(entities, graph, kg.num_entities)
    scorer.eval()

    def score(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        return scorer(table[heads], relations) @ table.T

    known = build_filter(kg)
    result: dict = {}
    for split in ("valid", "test"):
        evaluated = evaluate(score, kg.triples(split), known, kg.num_relations,
                             batch_size=config.evaluation.batch_size)
        result[split] = evaluated.to_json(kg.relation_names) if split == "test" \
            else evaluated.headline
    result["random_scorer"] = random_scorer_metrics(kg, known, "test", seed=config.seed)
    result["mrr"] = result["test"]["mrr"]
    return result
