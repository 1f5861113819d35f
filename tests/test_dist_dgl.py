"""Partitioned graphs with DistDGL: partitioning, and training on a DistGraph (standalone mode,
and one server with two trainer clients on 127.0.0.1). DistDGL keeps global state and reads its
mode from environment variables, so every training run is a subprocess."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from roam_graph.data.errors import DataError
from roam_graph.graph import dgl_distributed
from roam_graph.graph.partition import load_ids, partition_kg, read_sidecar

REPO = Path(__file__).resolve().parents[1]
GRAPH = "synthetic-tiny"
NO_METIS = pytest.mark.skipif(not dgl_distributed.metis_available(),
                              reason="this DGL build has no METIS")
METHODS = ["random", pytest.param("metis", marks=NO_METIS)]


def partitions_of(config: Path, num_parts: int) -> list[dgl_distributed.PartitionContent]:
    ids = load_ids(config)
    return [dgl_distributed.read_partition(config, part, ids) for part in range(num_parts)]


def sorted_rows(triples: torch.Tensor) -> torch.Tensor:
    key = (triples[:, 0] * 10_000 + triples[:, 1]) * 10_000 + triples[:, 2]
    return triples[torch.argsort(key)]


@pytest.mark.parametrize(("method", "balance_edges"), [
    ("random", False), pytest.param("metis", False, marks=NO_METIS),
    pytest.param("metis", True, marks=NO_METIS)])
def test_two_partitions_hold_every_entity_once_and_exactly_the_train_triples(
        kg, tmp_path: Path, method: str, balance_edges: bool) -> None:
    out = tmp_path / "parts"
    summary = partition_kg(kg, GRAPH, 2, out, method, balance_edges=balance_edges)
    config = out / f"{GRAPH}.json"
    assert config.is_file() and (out / "part0").is_dir() and (out / "part1").is_dir()
    assert json.loads(config.read_text())["num_parts"] == 2
    parts = partitions_of(config, 2)
    owned = torch.cat([p.entities for p in parts])
    assert torch.equal(torch.sort(owned).values, torch.arange(kg.num_entities))
    triples = torch.cat([p.triples for p in parts])
    assert torch.equal(sorted_rows(triples), sorted_rows(kg.triples("train")))
    assert [p.entities for p in summary.parts] == [len(p.entities) for p in parts]
    assert [p.triples for p in summary.parts] == [len(p.triples) for p in parts]


@pytest.mark.parametrize("method", METHODS)
def test_the_summary_edge_cut_counts_triples_between_partitions(kg, tmp_path: Path,
                                                                method: str) -> None:
    summary = partition_kg(kg, GRAPH, 2, tmp_path, method)
    owner = torch.empty(kg.num_entities, dtype=torch.int64)
    for part, content in enumerate(partitions_of(tmp_path / f"{GRAPH}.json", 2)):
        owner[content.entities] = part
    train = kg.triples("train")
    assert summary.edge_cut == int((owner[train[:, 0]] != owner[train[:, 2]]).sum())
    assert 0 < summary.edge_cut < len(train)
    assert "edge cut" in summary.format_table()


@NO_METIS
def test_metis_cuts_fewer_triples_than_random_assignment(kg, tmp_path: Path) -> None:
    metis = partition_kg(kg, GRAPH, 2, tmp_path / "metis", "metis")
    random = partition_kg(kg, GRAPH, 2, tmp_path / "random", "random")
    assert metis.edge_cut < random.edge_cut


def test_one_partition_is_the_whole_train_graph_with_features(kg, tmp_path: Path) -> None:
    summary = partition_kg(kg, GRAPH, 1, tmp_path, "metis")
    assert summary.edge_cut == 0 and summary.parts[0].entities == kg.num_entities
    sidecar = read_sidecar(tmp_path / f"{GRAPH}.json")
    assert sidecar["prepare"]["graph"] == GRAPH and sidecar["features"] is True
    node_feat = json.loads((tmp_path / f"{GRAPH}.json").read_text())
    assert node_feat["num_nodes"] == kg.num_entities
    assert node_feat["num_edges"] == len(kg.triples("train"))


def test_repartitioning_into_fewer_parts_removes_the_old_partition_folders(
        kg, tmp_path: Path) -> None:
    partition_kg(kg, GRAPH, 3, tmp_path, "random")
    partition_kg(kg, GRAPH, 2, tmp_path, "random")
    assert sorted(p.name for p in tmp_path.glob("part*")) == ["part0", "part1"]
    assert not list(tmp_path.glob(".partitioning-*"))


@pytest.mark.parametrize(("parts", "message"), [(0, "--parts must be >= 1"),
                                                (100_000, "more partitions than")])
def test_a_bad_partition_count_is_a_data_error(kg, tmp_path: Path, parts: int,
                                               message: str) -> None:
    with pytest.raises(DataError, match=message):
        partition_kg(kg, GRAPH, parts, tmp_path, "random")


def test_an_out_path_that_is_a_file_is_a_data_error(kg, tmp_path: Path) -> None:
    file = tmp_path / "taken"
    file.write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        partition_kg(kg, GRAPH, 2, file, "random")


def test_a_folder_holding_another_graphs_partitions_is_a_data_error(kg, tmp_path: Path) -> None:
    partition_kg(kg, "other-graph", 1, tmp_path, "random")
    with pytest.raises(DataError, match="already holds partitions of graph 'other-graph'"):
        partition_kg(kg, GRAPH, 1, tmp_path, "random")


def test_metis_without_metis_in_dgl_suggests_random(kg, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dgl_distributed, "metis_available", lambda: False)
    with pytest.raises(DataError, match="no METIS; use --method random"):
        partition_kg(kg, GRAPH, 2, tmp_path, "metis")


def test_a_graph_name_dgl_cannot_use_is_a_data_error(kg, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--graph 'a/b'"):
        partition_kg(kg, "a/b", 1, tmp_path, "random")


# -- command line -------------------------------------------------------------------------------
def load_pipeline(name: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 (the module)
    """pipelines/<name>.py as a module, run in this process: the paths tested here end before
    DistDGL is initialised, so no global state is left behind."""
    monkeypatch.syspath_prepend(str(REPO / "pipelines"))
    for variable in [v for v in os.environ if v.startswith("DGL_")]:
        monkeypatch.delenv(variable)  # standalone mode, whatever the calling shell says
    spec = importlib.util.spec_from_file_location(f"{name}_pipeline",
                                                  REPO / "pipelines" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_dist_subprocess(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DGL_")}
    environment.update(ROAM_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(REPO / "pipelines" / "train_dist.py"), *args],
                          capture_output=True, text=True, env=environment, timeout=300)


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """synthetic-tiny in one partition (what standalone mode reads), via the command line."""
    root = tmp_path_factory.mktemp("dist")
    with pytest.MonkeyPatch.context() as monkeypatch:
        partition = load_pipeline("partition", monkeypatch)
        assert partition.main(["--graph", GRAPH, "--parts", "1", "--out", str(root / "parts"),
                               "--data-dir", str(root / "data")]) == 0
    return root / "parts" / f"{GRAPH}.json", root / "data"


def test_partition_command_records_how_to_rebuild_the_graph_beside_the_config(
        partitioned: tuple[Path, Path]) -> None:
    config, data_dir = partitioned
    sidecar = read_sidecar(config)
    assert sidecar["prepare"]["graph"] == GRAPH
    assert sidecar["prepare"]["data_dir"] == str(data_dir.resolve())
    assert sidecar["summary"]["edge_cut"] == 0 and sidecar["summary"]["num_parts"] == 1


def test_partition_command_rejects_zero_parts_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    partition = load_pipeline("partition", monkeypatch)
    with pytest.raises(SystemExit) as stop:
        partition.run_main(partition.main, ["--graph", GRAPH, "--parts", "0",
                                            "--out", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --parts: must be >= 1, got 0" in err and err.count("\n") == 1


def test_standalone_training_learns_and_writes_metrics(partitioned: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    # 10 epochs: test MRR 0.13-0.15 for seeds 0-2 against 0.012-0.017 for random scores
    config, data_dir = partitioned
    result = train_dist_subprocess("--partition-config", str(config), "--epochs", "10",
                                   "--out", str(tmp_path / "run"), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["mode"] == "standalone" and metrics["trainers"] == 1
    losses = [epoch["loss"] for epoch in metrics["history"]]
    assert losses[-1] < losses[0]
    assert metrics["test"]["mrr"] > 3 * metrics["random_scorer"]["mrr"]
    assert metrics["valid"]["mrr"] > 3 * metrics["random_scorer"]["mrr"]
    assert "per_relation" in metrics["test"]
    assert not list((tmp_path / "run").glob("*.part"))


def test_standalone_training_refuses_a_two_partition_config(
        kg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    partition_kg(kg, GRAPH, 2, tmp_path / "parts", "random")
    train_dist = load_pipeline("train_dist", monkeypatch)
    with pytest.raises(DataError, match="2 partitions, but standalone mode .* --parts 1"):
        train_dist.main(["--partition-config", str(tmp_path / "parts" / f"{GRAPH}.json")])


def test_training_without_a_partition_config_file_is_a_data_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train_dist = load_pipeline("train_dist", monkeypatch)
    with pytest.raises(DataError, match="nothing.json: no such file"):
        train_dist.main(["--partition-config", str(tmp_path / "nothing.json")])


def test_training_needs_our_sidecar_beside_the_config(
        partitioned: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = partitioned
    lone = tmp_path / config.name
    lone.write_text(config.read_text())
    train_dist = load_pipeline("train_dist", monkeypatch)
    with pytest.raises(DataError, match="synthetic-tiny.roam.json is missing"):
        train_dist.main(["--partition-config", str(lone)])


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--epochs", "0", "argument --epochs: must be >= 1"),
    ("--negatives", "0", "argument --negatives: must be >= 1"),
    ("--sparse-lr", "0", "--sparse-lr must be a positive number"),
    ("--lr", "inf", "--lr: lr must be a finite number"),
    ("--lr", "0", "--lr: lr must be > 0")])
def test_training_rejects_bad_settings(partitioned: tuple[Path, Path], flag: str, value: str,
                                       message: str, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture) -> None:
    config, _ = partitioned
    train_dist = load_pipeline("train_dist", monkeypatch)
    with pytest.raises(SystemExit) as stop:  # integers when parsed, the rest by the config
        train_dist.run_main(train_dist.main, ["--partition-config", str(config), flag, value])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and err.count("\n") == 1


def test_the_flags_resolve_into_the_shared_configuration_with_one_width() -> None:
    from roam_graph.graph.prepare import PrepareOptions
    from roam_graph.training.dist_dgl import DEFAULTS, dist_config
    config = dist_config(PrepareOptions(GRAPH, data_dir=Path("cache")),
                         {"model.dim": 16, "training.lr": None, "seed": 3})
    assert (config.graph, config.data_dir, config.seed) == (GRAPH, "cache", 3)
    assert config.model.dim == config.model.relation_dim == 16
    assert config.training.lr == DEFAULTS["training.lr"]
    assert (config.training.regime, config.training.negative_strategy, config.training.loss) == \
        ("negative-sampling", "tail", "bce")


def test_distributed_mode_without_an_ip_config_is_a_data_error(
        partitioned: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = partitioned
    train_dist = load_pipeline("train_dist", monkeypatch)
    monkeypatch.setenv("DGL_DIST_MODE", "distributed")
    with pytest.raises(DataError, match="needs --ip-config"):
        train_dist.main(["--partition-config", str(config)])


# -- one server, two trainers on 127.0.0.1 ------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_one_server_and_two_trainers_on_localhost_train_together(
        partitioned: tuple[Path, Path], tmp_path: Path) -> None:
    """What dgl's launch tool does on one machine, by hand: a server process and two trainer
    processes running the same command with DGL_ROLE/DGL_SERVER_ID/... and torch's rank env."""
    config, data_dir = partitioned
    ip_config = tmp_path / "ip_config.txt"
    ip_config.write_text(f"127.0.0.1 {free_port()}\n")
    command = [sys.executable, str(REPO / "pipelines" / "train_dist.py"), "--partition-config",
               str(config), "--ip-config", str(ip_config), "--epochs", "10",
               "--batch-size", "128", "--out", str(tmp_path / "run")]
    base = {k: v for k, v in os.environ.items() if not k.startswith("DGL_")}
    base.update(ROAM_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                DGL_DIST_MODE="distributed", DGL_IP_CONFIG=str(ip_config), DGL_NUM_SERVER="1",
                DGL_CONF_PATH=str(config), DGL_DIST_MAX_TRY_TIMES="40")
    server = dict(base, DGL_ROLE="server", DGL_SERVER_ID="0", DGL_NUM_CLIENT="2")
    master = str(free_port())
    trainers = [dict(base, DGL_ROLE="client", DGL_NUM_SAMPLER="0", MASTER_ADDR="127.0.0.1",
                     MASTER_PORT=master, RANK=str(rank), WORLD_SIZE="2") for rank in (0, 1)]
    logs = [(tmp_path / f"{name}.log").open("w") for name in ("server", "trainer0", "trainer1")]
    processes = [subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                 for env, log in zip([server, *trainers], logs, strict=True)]
    try:
        codes = [process.wait(timeout=240) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        for log in logs:
            log.close()
    output = {path.stem: path.read_text() for path in tmp_path.glob("*.log")}
    assert codes == [0, 0, 0], output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["mode"] == "distributed" and metrics["trainers"] == 2
    assert metrics["test"]["mrr"] > 3 * metrics["random_scorer"]["mrr"]
    assert "2 trainer(s)" in output["trainer0"] + output["trainer1"]


def test_only_the_two_dgl_adapters_import_dgl() -> None:
    importers = sorted(
        str(path.relative_to(REPO)) for folder in ("roam_graph", "pipelines")
        for path in (REPO / folder).rglob("*.py")
        if any(line.split()[:2] in (["import", "dgl"], ["from", "dgl"])
               or line.strip().startswith(("import dgl.", "from dgl."))
               for line in path.read_text(encoding="utf-8").splitlines()))
    assert importers == ["roam_graph/graph/dgl_adapter.py", "roam_graph/graph/dgl_distributed.py"]
