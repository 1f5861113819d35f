"""Partition a graph's training triples for DistDGL and describe the result.

What is partitioned: the TRAIN split only, as a homogeneous graph ``head -> tail`` (entities are
nodes; edge data ``relation``; node data ``entity`` = our entity id plus, optionally, the modality
features and their ``<modality>_present`` masks). Valid and test triples stay out of the
partitions: trainers never see them, and evaluation reads them from the prepared graph.

Layout of ``DIR`` (one graph per folder, since DistDGL names partition folders ``part<i>``
whatever the graph):
- ``<graph>.json``      DistDGL's partition config (node/edge id ranges per partition); written
                        last, so its presence marks a complete partitioning;
- ``part<i>/``          DistDGL's files of partition ``i`` (``graph.dgl``, ``node_feat.dgl``,
                        ``edge_feat.dgl``);
- ``<graph>.roam.json`` how to rebuild the graph for evaluation (``PrepareOptions``) and the
                        summary below;
- ``<graph>.ids.pt``    DistDGL's renumbering: ``node[new] = entity id``, ``edge[new] = train row``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from roam_graph.atomic import atomic_path, write_json
from roam_graph.data.errors import DataError
from roam_graph.graph import dgl_distributed
from roam_graph.graph.mmkg import PRESENT_SUFFIX, MultimodalKG
from roam_graph.graph.prepare import PrepareOptions

METHODS = dgl_distributed.METHODS
SIDECAR_SUFFIX = ".roam.json"
IDS_SUFFIX = ".ids.pt"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class PartStats:
    entities: int
    triples: int
    halo_entities: int


@dataclass(frozen=True)
class PartitionSummary:
    graph: str
    method: str
    num_parts: int
    num_entities: int
    num_triples: int
    edge_cut: int
    seconds: float
    parts: tuple[PartStats, ...]
    config: str

    @property
    def cut_fraction(self) -> float:
        return self.edge_cut / max(1, self.num_triples)

    def format_table(self) -> str:
        how = f"{self.num_parts} parts with {self.method}" if self.num_parts > 1 \
            else "1 part (the whole graph)"
        lines = [f"partitioned {self.graph!r} ({self.num_entities} entities, "
                 f"{self.num_triples} train triples) into {how} in {self.seconds:.2f} s "
                 f"-> {self.config}",
                 f"{'part':>4}  {'entities':>9}  {'triples':>9}  {'halo':>9}"]
        lines += [f"{i:>4}  {p.entities:>9}  {p.triples:>9}  {p.halo_entities:>9}"
                  for i, p in enumerate(self.parts)]
        lines.append(f"edge cut: {self.edge_cut} of {self.num_triples} train triples "
                     f"({100 * self.cut_fraction:.1f}%) join entities of different partitions")
        return "\n".join(lines)


def check_partition_request(graph: str, num_parts: int, out: Path, method: str,
                            num_entities: int | None = None) -> None:
    """Every option error, before any work (DataError naming the flag and value)."""
    if not _NAME.match(graph):
        raise DataError(f"--graph {graph!r}: DistDGL needs a graph name of letters, digits, "
                        "'_', '.' and '-' (it names shared-memory blocks after it)")
    if num_parts < 1:
        raise DataError(f"--parts must be >= 1, got {num_parts}")
    if num_entities is not None and num_parts > num_entities:
        raise DataError(f"--parts {num_parts}: more partitions than the {num_entities} entities")
    if method not in METHODS:
        raise DataError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    if method == "metis" and num_parts > 1 and not dgl_distributed.metis_available():
        raise DataError("--method metis: this DGL build has no METIS; use --method random "
                        "(or a DGL build with METIS)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file, not a folder")
    for config in out.glob("*.json") if out.is_dir() else ():
        if config.name.endswith(SIDECAR_SUFFIX):
            continue
        other = _partition_config_graph(config)
        if other is not None and other != graph:
            raise DataError(f"--out {out} already holds partitions of graph {other!r} "
                            f"({config.name}); use one folder per graph")


def _partition_config_graph(path: Path) -> str | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta.get("graph_name") if isinstance(meta, dict) and "num_parts" in meta else None


def partition_kg(kg: MultimodalKG, graph: str, num_parts: int, out: Path, method: str = "metis",
                 options: PrepareOptions | None = None, features: bool = True,
                 balance_edges: bool = False) -> PartitionSummary:
    """Partition ``kg``'s train triples into ``out`` (layout in the module docstring).
    METIS balances entities per partition; ``balance_edges`` balances triples too."""
    out = Path(out)
    check_partition_request(graph, num_parts, out, method, kg.num_entities)
    train = kg.triples("train")
    if len(train) == 0:
        raise DataError(f"graph {graph!r} has no train triples to partition")
    node_data: dict[str, torch.Tensor] = {}
    if features:
        for name, modality in kg.modalities.items():
            node_data[name] = modality.values.to(torch.float32)
            node_data[name + PRESENT_SUFFIX] = modality.present.to(torch.uint8)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f".partitioning-{graph}-", dir=out) as scratch:
        ids, _ = dgl_distributed.partition_graph(train, kg.num_entities, node_data, graph,
                                                 num_parts, Path(scratch), method,
                                                 balance_edges)
        seconds = time.perf_counter() - started
        config = out / f"{graph}.json"
        summary = _summarize(kg, graph, method, num_parts, train, ids,
                             Path(scratch) / config.name, seconds, config)
        _install(Path(scratch), out, graph, num_parts, ids, summary, options, features)
    return summary


def _summarize(kg: MultimodalKG, graph: str, method: str, num_parts: int, train: torch.Tensor,
               ids: dgl_distributed.PartitionedIds, written: Path, seconds: float,
               config: Path) -> PartitionSummary:
    node_ranges, _ = dgl_distributed.partition_ranges(written)
    owner = torch.empty(kg.num_entities, dtype=torch.int64)
    for part, (start, end) in enumerate(node_ranges):
        owner[ids.node[start:end]] = part
    parts = []
    for part in range(num_parts):
        content = dgl_distributed.read_partition(written, part, ids)
        parts.append(PartStats(len(content.entities), len(content.triples), content.halo_nodes))
    cut = int((owner[train[:, 0]] != owner[train[:, 2]]).sum())
    return PartitionSummary(graph, method, num_parts,
                            kg.num_entities, len(train), cut, seconds, tuple(parts), str(config))


def _install(scratch: Path, out: Path, graph: str, num_parts: int,
             ids: dgl_distributed.PartitionedIds, summary: PartitionSummary,
             options: PrepareOptions | None, features: bool) -> None:
    """Move the finished partitions into ``out``: old ones of the same graph go first, the
    DistDGL config is renamed into place last (a crash before leaves no config that lies)."""
    config = out / f"{graph}.json"
    config.unlink(missing_ok=True)
    for old in out.glob("part*"):
        if old.is_dir() and re.fullmatch(r"part\d+", old.name):
            shutil.rmtree(old)
    for part in range(num_parts):
        os.replace(scratch / f"part{part}", out / f"part{part}")
    with atomic_path(out / f"{graph}{IDS_SUFFIX}") as temporary:
        torch.save({"node": ids.node, "edge": ids.edge}, temporary)
    write_json(out / f"{graph}{SIDECAR_SUFFIX}", {
        "prepare": _options_json(options, graph), "features": features,
        "summary": {**asdict(summary), "parts": [asdict(p) for p in summary.parts]},
    })
    os.replace(scratch / config.name, config)


def _options_json(options: PrepareOptions | None, graph: str) -> dict:
    options = options or PrepareOptions(graph)
    return {"graph": options.graph,
            "source": str(Path(options.source).resolve()) if options.source else None,
            "data_dir": str(Path(options.data_dir).resolve()) if options.data_dir else None,
            "text_encoder": options.text_encoder, "format": options.format,
            "seed": options.seed}


def read_sidecar(config: Path) -> dict:
    """The ``<graph>.roam.json`` next to a DistDGL partition config (DataError if absent)."""
    config = Path(config)
    if not config.is_file():
        raise DataError(f"--partition-config {config}: no such file "
                        "(make it with pipelines/partition.py)")
    sidecar = config.with_name(config.name.removesuffix(".json") + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        raise DataError(f"--partition-config {config}: {sidecar.name} is missing beside it; "
                        "partition with pipelines/partition.py")
    try:
        return json.loads(sidecar.read_text(encoding="utf-8"))
    except ValueError as error:
        raise DataError(f"{sidecar}: not valid JSON ({error})") from None


def prepare_options(sidecar: dict, data_dir: Path | None = None) -> PrepareOptions:
    """``PrepareOptions`` recorded at partition time (``data_dir`` overrides the recorded one)."""
    recorded = sidecar["prepare"]
    folder = data_dir or (Path(recorded["data_dir"]) if recorded["data_dir"] else None)
    return PrepareOptions(graph=recorded["graph"],
                          source=Path(recorded["source"]) if recorded["source"] else None,
                          data_dir=folder, text_encoder=recorded["text_encoder"],
                          format=recorded["format"], seed=recorded["seed"])


def load_ids(config: Path) -> dgl_distributed.PartitionedIds:
    config = Path(config)
    data = torch.load(config.with_name(config.name.removesuffix(".json") + IDS_SUFFIX))
    return dgl_distributed.PartitionedIds(data["node"], data["edge"])
