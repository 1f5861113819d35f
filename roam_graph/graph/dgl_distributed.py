"""The only module that touches ``dgl.distributed`` (DistDGL): partitioning, the distributed
graph, distributed embeddings and their sparse optimizer.

Like ``dgl_adapter``, it keeps DGL behind a few functions so that training
(``roam_graph.training.dist_dgl``) stays plain PyTorch. Objects it returns (``DistGraph``,
``DistEmbedding``, ``SparseAdam``) are used opaquely: the caller only calls the functions here,
``embedding(ids)`` (a tensor that records its gradient) and ``optimizer.step()``.

DistDGL runs in one of two modes, chosen by the environment variable ``DGL_DIST_MODE``:
``standalone`` (the default; one process, no server, the graph must have ONE partition) or
``distributed`` (servers hold the partitions, trainers are RPC clients; dgl's launch tool or the
test sets ``DGL_ROLE``, ``DGL_SERVER_ID``, ``DGL_NUM_SERVER``, ... see docs/distributed-dgl.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

# DGL prints a backend warning on import unless this is set; we only support PyTorch.
os.environ.setdefault("DGLBACKEND", "pytorch")
import dgl  # noqa: E402
import dgl.distributed as dist  # noqa: E402
from dgl.distributed.optim import SparseAdam  # noqa: E402

#: Node data: the entity's id in our graph (DistDGL renumbers nodes when it partitions).
ENTITY_KEY = "entity"
#: Edge data: the relation id of the triple.
RELATION_KEY = "relation"
METHODS = ("metis", "random")
MODE_ENV = "DGL_DIST_MODE"

DistGraph = dist.DistGraph
DistEmbedding = dist.DistEmbedding


@dataclass(frozen=True)
class PartitionedIds:
    """How DistDGL renumbered the graph: ``node[new] = entity id``, ``edge[new] = train row``."""

    node: torch.Tensor
    edge: torch.Tensor


@dataclass(frozen=True)
class PartitionContent:
    """One partition in our ids: the entities it owns, the triples it owns (an edge belongs to
    the partition of its tail, DistDGL's rule) and its HALO node count (copies of neighbours)."""

    entities: torch.Tensor
    triples: torch.Tensor
    halo_nodes: int


@cache
def metis_available() -> bool:
    """Whether this DGL build ships METIS (a tiny 4-node graph is split in two to find out)."""
    tiny = dgl.graph((torch.tensor([0, 1, 2, 3]), torch.tensor([1, 2, 3, 0])))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            dgl.metis_partition_assignment(tiny, 2)
    except Exception:  # noqa: BLE001 (DGL raises DGLError or RuntimeError, build-dependent)
        return False
    return True


def partition_graph(triples: torch.Tensor, num_entities: int,
                    node_data: Mapping[str, torch.Tensor], graph_name: str, num_parts: int,
                    out: Path, method: str, balance_edges: bool = False
                    ) -> tuple[PartitionedIds, str]:
    """Write DistDGL partitions of the homogeneous graph ``head -> tail`` (edge data
    ``relation``, node data ``entity`` plus ``node_data``) to ``out``: ``out/<graph_name>.json``
    and ``out/part<i>/``. ``balance_edges`` asks METIS to balance edges as well as nodes.
    Returns the renumbering and DGL's own log (it prints a lot)."""
    triples = triples.to(torch.int64)
    graph = dgl.graph((triples[:, 0], triples[:, 2]), num_nodes=num_entities, idtype=torch.int64)
    graph.edata[RELATION_KEY] = triples[:, 1].clone()
    graph.ndata[ENTITY_KEY] = torch.arange(num_entities)
    for key, value in node_data.items():
        graph.ndata[key] = value
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        node_ids, edge_ids = dist.partition_graph(
            graph, graph_name, num_parts, str(out), num_hops=1, part_method=method,
            balance_edges=balance_edges, return_mapping=True)
    return PartitionedIds(node_ids.to(torch.int64), edge_ids.to(torch.int64)), log.getvalue()


def partition_ranges(config: Path) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``[start, end)`` of the renumbered node and edge ids each partition owns."""
    meta = json.loads(Path(config).read_text(encoding="utf-8"))
    node_map, edge_map = meta["node_map"], meta["edge_map"]
    nodes = next(iter(node_map.values())) if isinstance(node_map, dict) else node_map
    edges = next(iter(edge_map.values())) if isinstance(edge_map, dict) else edge_map
    return [tuple(r) for r in nodes], [tuple(r) for r in edges]


def read_partition(config: Path, part_id: int, ids: PartitionedIds) -> PartitionContent:
    """Load partition ``part_id`` from disk and express it in our entity ids."""
    with contextlib.redirect_stdout(io.StringIO()):
        graph, node_feats, edge_feats, *_ = dist.load_partition(str(config), part_id,
                                                                load_feats=True)
    inner_nodes = graph.ndata["inner_node"].bool()
    inner_edges = graph.edata["inner_edge"].bool()
    local_heads, local_tails = graph.edges()
    global_nodes = graph.ndata[dgl.NID]
    heads = ids.node[global_nodes[local_heads[inner_edges]]]
    tails = ids.node[global_nodes[local_tails[inner_edges]]]
    relations = _feature(edge_feats, RELATION_KEY)
    entities = _feature(node_feats, ENTITY_KEY)
    return PartitionContent(entities.to(torch.int64),
                            torch.stack([heads, relations.to(torch.int64), tails], dim=1),
                            int((~inner_nodes).sum()))


def _feature(features: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    """DGL prefixes stored features with their type (``_N/entity``, ``_N:_E:_N/relation``)."""
    return next(value for name, value in features.items() if name.split("/")[-1] == key)


# -- runtime ---------------------------------------------------------------------------------
def is_standalone() -> bool:
    return os.environ.get(MODE_ENV, "standalone") == "standalone"


def initialize(ip_config: Path | None) -> None:
    """``dgl.distributed.initialize``: in a server process this serves the partitions until the
    trainers finish and then EXITS the process; in a trainer it connects to the servers (or sets
    up an in-process store in standalone mode). Call it before ``torch.distributed``."""
    # standalone: hide DGL's banner; distributed: keep its connection log (helps when stuck)
    quiet = contextlib.redirect_stdout(io.StringIO()) if is_standalone() \
        else contextlib.nullcontext()
    with quiet:
        dist.initialize(str(ip_config) if ip_config else "ip_config.txt")


def open_graph(graph_name: str, config: Path) -> dist.DistGraph:
    return dist.DistGraph(graph_name, part_config=str(config))


def num_nodes(graph: dist.DistGraph) -> int:
    return int(graph.num_nodes())


def entity_ids(graph: dist.DistGraph) -> torch.Tensor:
    """Our entity id of every DistGraph node, in the DistGraph's (renumbered) order."""
    return graph.ndata[ENTITY_KEY][0:graph.num_nodes()].to(torch.int64)


def local_edges(graph: dist.DistGraph) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """This trainer's share of the edges (``edge_split``: the edges of its machine's partition,
    split evenly among that machine's trainers) as renumbered ``(heads, relations, tails)``."""
    everything = torch.ones(graph.num_edges(), dtype=torch.bool)
    edge_ids = dist.edge_split(everything, graph.get_partition_book(), force_even=True)
    heads, tails = graph.find_edges(edge_ids)
    relations = graph.edata[RELATION_KEY][edge_ids]
    return heads.to(torch.int64), relations.to(torch.int64), tails.to(torch.int64)


def num_trainers() -> int:
    return 1 if is_standalone() else int(dist.role.get_num_trainers())


def num_partitions(graph: dist.DistGraph) -> int:
    return int(graph.get_partition_book().num_partitions())


def make_embedding(count: int, dim: int, name: str,
                   init: Callable[[tuple[int, ...], torch.dtype], torch.Tensor]
                   ) -> dist.DistEmbedding:
    """A ``DistEmbedding`` sharded like the graph's nodes. ``init(shape, dtype)`` runs where each
    shard lives (in a server process in distributed mode), so it must be importable by module
    path (a module-level function or a ``functools.partial`` of one, not a lambda)."""
    return dist.DistEmbedding(count, dim, name=name, init_func=init)


def sparse_adam(embeddings: list[dist.DistEmbedding], lr: float) -> SparseAdam:
    """DistDGL's SparseAdam: updates only the rows a batch touched, where they live. It needs
    ``torch.distributed`` to be initialised, even with a single trainer."""
    return SparseAdam(embeddings, lr=lr)


def read_rows(embedding: dist.DistEmbedding, ids: torch.Tensor) -> torch.Tensor:
    """Rows of a ``DistEmbedding`` without recording them for the optimizer."""
    with torch.no_grad():
        return embedding(ids)
