"""Link-prediction training on a partitioned graph with DistDGL (docs/distributed-dgl.md).

Where the parameters live:
- entity embeddings: a ``DistEmbedding`` sharded like the graph's nodes (each server holds its
  partition's rows), updated sparsely by DistDGL's ``SparseAdam`` (only the rows a batch touched);
- relation embeddings and the scorer: ordinary torch modules, replicated in every trainer and
  kept identical by ``DistributedDataParallel`` (gloo) when there is more than one trainer.

The scorer is DistMult by default (``s = <e_h, w_r, e_t>``, Yang et al. 2015): no dense core to
synchronise, no dropout or batch norm, and it learns the tiny graphs of the tests in a few epochs.
``scorer="tucker"`` uses the paper's ``TuckerInteraction`` (Eq. 10) instead, with the same
query-times-tail form. Both score over ``2R`` relations: head prediction is tail prediction of the
reciprocal relation ``r + R``, as everywhere in this project. Training is structure-only
negative sampling (BCE, uniform negatives); the multimodal models (ROAM, MoMoK) are not supported
in this mode (their encoders need every entity's features at every step).

Each trainer iterates over its share of the training edges (``edge_split``); all trainers take
the same number of steps per epoch (the largest share decides; shorter shares wrap around),
because each ``SparseAdam`` step and each DDP backward is collective.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from roam_graph.atomic import write_json
from roam_graph.data.errors import DataError
from roam_graph.evaluation import build_filter, evaluate
from roam_graph.evaluation.baselines import random_scorer_metrics
from roam_graph.graph import dgl_distributed as ddgl
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model.interaction import TuckerInteraction

SCORERS = ("distmult", "tucker")
Log = Callable[[str], None]


@dataclass(frozen=True)
class DistTrainConfig:
    epochs: int = 20
    batch_size: int = 256
    dim: int = 64
    negatives: int = 32
    lr: float = 0.01
    sparse_lr: float = 0.02
    scorer: str = "tucker"
    seed: int = 0
    eval_batch_size: int = 512

    def check(self) -> None:
        for name in ("epochs", "batch_size", "dim", "negatives", "eval_batch_size"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise DataError(f"{flag} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "sparse_lr"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise DataError(f"--{name.replace('_', '-')} must be a positive number, "
                                f"got {value}")
        if self.scorer not in SCORERS:
            raise DataError(f"--scorer {self.scorer!r}: choose one of {', '.join(SCORERS)}")


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
    """Query from the paper's ``TuckerInteraction`` (Eq. 10) with learned relation vectors."""

    def __init__(self, num_relations: int, dim: int) -> None:
        super().__init__()
        self.relations = nn.Embedding(num_relations, dim)
        nn.init.xavier_normal_(self.relations.weight)
        self.tucker = TuckerInteraction(dim, dim)

    def forward(self, heads: torch.Tensor, relation_ids: torch.Tensor) -> torch.Tensor:
        return self.tucker.query(heads, self.relations(relation_ids), relation_ids)


def make_scorer(name: str, num_relations: int, dim: int) -> nn.Module:
    """A scorer over ``num_relations`` (already doubled for reciprocals)."""
    return DistMultScorer(num_relations, dim) if name == "distmult" \
        else TuckerScorer(num_relations, dim)


@dataclass(frozen=True)
class Context:
    """This process's place in the run: rank among ``world`` trainers, partitions, mode."""

    rank: int
    world: int
    num_partitions: int
    standalone: bool


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


def run_dist_training(config: DistTrainConfig, graph_name: str, part_config: Path,
                      kg: MultimodalKG, out: Path, log: Log = print) -> dict | None:
    """Train on the DistGraph ``graph_name`` (``part_config``), evaluate filtered MRR on valid
    and test with ``roam_graph.evaluation`` and write ``out/metrics.json`` (rank 0 only; the
    metrics are returned there, ``None`` elsewhere). ``ddgl.initialize`` must have run."""
    config.check()
    torch.manual_seed(config.seed)
    graph = ddgl.open_graph(graph_name, part_config)
    if ddgl.num_nodes(graph) != kg.num_entities:
        raise DataError(f"--partition-config {part_config}: {ddgl.num_nodes(graph)} nodes, but "
                        f"graph {kg.name!r} has {kg.num_entities} entities; re-partition it")
    rank, world = init_torch_distributed()
    if world != ddgl.num_trainers():
        raise DataError(f"torch.distributed has {world} processes but DistDGL "
                        f"{ddgl.num_trainers()} trainers; launch one torch process per trainer")
    ctx = Context(rank, world, ddgl.num_partitions(graph), ddgl.is_standalone())
    say = log if rank == 0 else (lambda _: None)
    heads, relations, tails = ddgl.local_edges(graph)
    num_nodes, num_relations = ddgl.num_nodes(graph), kg.num_relations
    entities = ddgl.make_embedding(num_nodes, config.dim, f"{graph_name}-entity",
                                   partial(uniform_init, scale=1 / math.sqrt(config.dim),
                                           seed=config.seed))
    sparse = ddgl.sparse_adam([entities], config.sparse_lr)
    scorer = make_scorer(config.scorer, 2 * num_relations, config.dim)
    model: nn.Module = scorer
    if world > 1:
        model = nn.parallel.DistributedDataParallel(scorer)
    dense = torch.optim.Adam(model.parameters(), lr=config.lr)
    torch.manual_seed(config.seed + 7919 * rank)  # same initial scorer, different negatives
    steps = _steps_per_epoch(len(heads), config.batch_size)
    say(f"{ctx.world} trainer(s), {ctx.num_partitions} partition(s), "
        f"{'standalone' if ctx.standalone else 'distributed'} mode; {len(heads)} local train "
        f"triples, {steps} steps per epoch, scorer {config.scorer}")
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        order = _epoch_order(len(heads), steps * config.batch_size, config.seed, epoch, rank)
        model.train()
        total = 0.0
        for step in range(steps):
            rows = order[step * config.batch_size:(step + 1) * config.batch_size]
            loss = _step_loss(model, entities, heads[rows], relations[rows], tails[rows],
                              num_relations, num_nodes, config.negatives)
            dense.zero_grad()
            sparse.zero_grad()  # without it DGL keeps every past batch's trace and reapplies it
            loss.backward()
            sparse.step()
            dense.step()
            total += float(loss)
        seconds = time.perf_counter() - epoch_start
        mean_loss = _mean_across(total / steps, world)
        history.append({"epoch": epoch, "loss": mean_loss, "seconds": seconds})
        say(f"epoch {epoch}/{config.epochs}: loss {mean_loss:.4f} ({seconds:.2f} s, "
            f"{world * steps * config.batch_size / seconds:.0f} triples/s)")
    train_seconds = time.perf_counter() - started
    metrics = None
    if rank == 0:
        metrics = _evaluate(scorer, entities, graph, kg, config, log)
        metrics.update(graph=kg.name, mode="standalone" if ctx.standalone else "distributed",
                       trainers=world, partitions=ctx.num_partitions, config=asdict(config),
                       history=history, train_seconds=train_seconds,
                       train_triples_per_second=config.epochs * world * steps
                       * config.batch_size / train_seconds)
        path = Path(out) / "metrics.json"
        write_json(path, metrics)
        log(f"valid MRR {metrics['valid']['mrr']:.4f}, test MRR {metrics['test']['mrr']:.4f} "
            f"(random scorer {metrics['random_scorer']['mrr']:.4f}) -> {path}")
    if world > 1:
        torch.distributed.barrier()  # the others wait while rank 0 reads every shard
    return metrics


def _steps_per_epoch(local: int, batch_size: int) -> int:
    """The same for every trainer: the largest local share decides."""
    steps = torch.tensor([max(1, math.ceil(local / batch_size))])
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.all_reduce(steps, op=torch.distributed.ReduceOp.MAX)
    return int(steps)


def _epoch_order(local: int, length: int, seed: int, epoch: int, rank: int) -> torch.Tensor:
    """A permutation of the local rows per epoch from ``(seed, epoch, rank)``, repeated to
    ``length`` when this trainer's share is shorter than the longest one."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 1_009 + rank)
    repeats = max(1, math.ceil(length / max(1, local)))
    return torch.cat([torch.randperm(local, generator=generator) for _ in range(repeats)])[:length]


def _step_loss(model: nn.Module, entities: ddgl.DistEmbedding, heads: torch.Tensor,
               relations: torch.Tensor, tails: torch.Tensor, num_relations: int, num_nodes: int,
               negatives: int) -> torch.Tensor:
    """BCE of each positive against ``negatives`` uniform corruptions of its tail, for the tail
    query ``(h, r)`` and the reciprocal head query ``(t, r + R)``. Entity rows are pulled from the
    DistEmbedding once per step (unique ids), so SparseAdam sees each row once."""
    query_heads = torch.cat([heads, tails])
    query_relations = torch.cat([relations, relations + num_relations])
    targets = torch.cat([tails, heads])
    corrupt = torch.randint(0, num_nodes, (len(targets), negatives))
    ids, inverse = torch.unique(torch.cat([query_heads, targets, corrupt.flatten()]),
                                return_inverse=True)
    rows = entities(ids)
    n = len(query_heads)
    query = model(rows[inverse[:n]], query_relations)
    positive = (query * rows[inverse[n:2 * n]]).sum(-1)
    negative = torch.einsum("bd,bkd->bk", query,
                            rows[inverse[2 * n:]].view(n, negatives, -1))
    return F.softplus(-positive).mean() + F.softplus(negative).mean()


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
              kg: MultimodalKG, config: DistTrainConfig, log: Log) -> dict:
    """Filtered ranks (both directions, realistic ties) on valid and test with our evaluator."""
    table = all_entity_rows(entities, graph, kg.num_entities)
    scorer.eval()

    def score(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        return scorer(table[heads], relations) @ table.T

    known = build_filter(kg)
    result: dict = {}
    for split in ("valid", "test"):
        evaluated = evaluate(score, kg.triples(split), known, kg.num_relations,
                             batch_size=config.eval_batch_size)
        result[split] = evaluated.to_json(kg.relation_names) if split == "test" \
            else evaluated.headline
    result["random_scorer"] = random_scorer_metrics(kg, known, "test", seed=config.seed)
    result["mrr"] = result["test"]["mrr"]
    return result
