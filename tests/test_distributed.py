"""Data-parallel training (docs/distributed.md): shards of an epoch are disjoint and cover it,
torchrun runs end with identical parameters on every rank and one set of result files, a failing
rank ends the whole run, and misuse gives a clear error."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from roam_graph.data.errors import DataError
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model import build_model
from roam_graph.sampling import EdgeBatchSampler, OneToNSampler, make_negative_sampler
from roam_graph.training import distributed
from roam_graph.training.config import ExperimentConfig, load_config
from roam_graph.training.trainer import run_training

REPO = Path(__file__).resolve().parents[1]
LAUNCH_TIMEOUT_S = 600  # a bound, not a speed requirement: a hanging launch fails the test


def query_ids(batch: object) -> list[tuple[int, ...]]:
    rows = batch.queries if hasattr(batch, "queries") else batch
    return [tuple(row) for row in rows.tolist()]


# -- sharding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_of_an_epoch_are_disjoint_and_cover_it_but_for_fewer_than_world_size_items(
        kg: MultimodalKG, world_size: int) -> None:
    full = OneToNSampler.from_kg(kg, 64, seed=3)
    full.set_epoch(2)
    epoch = [q for batch in full for q in query_ids(batch)]
    shards = []
    for rank in range(world_size):
        shard = full.shard(rank, world_size)
        shard.set_epoch(2)
        shards.append([q for batch in shard for q in query_ids(batch)])
    union = [q for shard in shards for q in shard]
    assert len(set(union)) == len(union)                       # disjoint, no repeats
    assert set(union) <= set(epoch)
    assert len(epoch) - len(union) == len(epoch) % world_size  # drop-last: < world_size items
    assert len({len(shard) for shard in shards}) == 1          # every rank as many items


def test_shards_cover_the_whole_epoch_when_the_items_divide_evenly(kg: MultimodalKG) -> None:
    triples = kg.triples("train")[:1000]
    full = EdgeBatchSampler(triples, 100, seed=1)
    shards = [full.shard(rank, 4) for rank in range(4)]
    union = sorted(q for shard in shards for batch in shard for q in query_ids(batch))
    assert union == sorted(query_ids(triples))


def test_every_rank_runs_the_same_steps_and_together_they_make_the_global_batch(
        kg: MultimodalKG) -> None:
    """Step i of the ranks together is batch i of one process with batch size b * world_size."""
    world, per_rank = 2, 32
    single = OneToNSampler.from_kg(kg, per_rank * world, seed=5)
    shards = [OneToNSampler.from_kg(kg, per_rank, seed=5).shard(r, world) for r in range(world)]
    steps = [list(shard) for shard in shards]
    assert len(steps[0]) == len(steps[1]) == len(shards[0])
    assert [len(b) for b in steps[0]] == [len(b) for b in steps[1]]
    for i, batch in enumerate(list(single)[:-1]):   # the last one lacks the dropped items
        together = query_ids(steps[0][i]) + query_ids(steps[1][i])
        assert sorted(together) == sorted(query_ids(batch))


def test_a_one_rank_shard_is_the_unsharded_sampler(kg: MultimodalKG) -> None:
    negatives = make_negative_sampler("uniform", kg, 4, seed=0)
    full = EdgeBatchSampler.from_kg(kg, 128, seed=2, transform=negatives)
    alone = full.shard(0, 1)
    for a, b in zip(full, alone, strict=True):
        assert torch.equal(a.expanded(), b.expanded())


def test_ranks_draw_independent_negatives(kg: MultimodalKG) -> None:
    negatives = make_negative_sampler("uniform", kg, 8, seed=0)
    full = EdgeBatchSampler.from_kg(kg, 64, seed=2, transform=negatives)
    first = [next(iter(full.shard(rank, 2))) for rank in range(2)]
    assert not torch.equal(first[0].candidates[:, 1:], first[1].candidates[:, 1:])


def test_a_shard_with_workers_yields_the_same_batches(kg: MultimodalKG) -> None:
    shard = OneToNSampler.from_kg(kg, 100, seed=4).shard(1, 2)
    pooled = OneToNSampler.from_kg(kg, 100, seed=4, num_workers=1).shard(1, 2)
    try:
        assert [query_ids(b) for b in shard] == [query_ids(b) for b in pooled]
    finally:
        pooled.close()


def test_a_shard_resumes_only_into_the_same_rank_and_world_size(kg: MultimodalKG) -> None:
    sampler = OneToNSampler.from_kg(kg, 100, seed=0)
    state = sampler.shard(1, 2).state_dict()
    with pytest.raises(ValueError, match="rank=1"):
        sampler.shard(0, 2).load_state_dict(state)
    with pytest.raises(ValueError, match="world_size=2"):
        sampler.load_state_dict(sampler.shard(0, 2).state_dict())


@pytest.mark.parametrize(("rank", "world", "message"), [
    (2, 2, "rank must be in 0..1"), (-1, 2, "rank must be in"), (0, 0, "world_size must be"),
    (0, 100_000, "cannot be shared by 100000 ranks")])
def test_impossible_shards_are_refused(kg: MultimodalKG, rank: int, world: int,
                                       message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OneToNSampler.from_kg(kg, 100).shard(rank, world)


def test_a_shard_cannot_be_sharded_again(kg: MultimodalKG) -> None:
    with pytest.raises(ValueError, match="already a shard"):
        OneToNSampler.from_kg(kg, 100).shard(0, 2).shard(0, 2)


# -- configuration errors ---------------------------------------------------------------------
TORCHRUN_ENV = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": "29500"}


@pytest.mark.parametrize("missing", distributed.TORCHRUN_VARIABLES)
def test_distributed_without_torchrun_names_the_missing_variable_and_the_launch_command(
        missing: str) -> None:
    env = {k: v for k, v in TORCHRUN_ENV.items() if k != missing}
    with pytest.raises(DataError, match=rf"variable {missing} is not set.*torchrun --standalone"):
        distributed.torchrun_environment(env)


def test_run_pipeline_with_distributed_outside_torchrun_fails_before_any_work(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "pipelines"))
    try:
        import run as run_pipeline  # pipelines/run.py
    finally:
        sys.path.remove(str(REPO / "pipelines"))
    for name in distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DataError, match="RANK is not set"):
        run_pipeline.main(["--graph", "synthetic-tiny", "--distributed", "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())


def test_torchrun_with_several_ranks_but_without_the_flag_is_refused() -> None:
    with pytest.raises(DataError, match="WORLD_SIZE=2 .* add --distributed"):
        distributed.refuse_torchrun_without_flag(TORCHRUN_ENV)
    distributed.refuse_torchrun_without_flag({"WORLD_SIZE": "1"})  # a 1-process torchrun is fine


@pytest.mark.parametrize(("env", "message"), [
    ({**TORCHRUN_ENV, "RANK": "two"}, "must be integers"),
    ({**TORCHRUN_ENV, "RANK": "2"}, "RANK=2 is not in 0..WORLD_SIZE-1")])
def test_malformed_torchrun_variables_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(DataError, match=message):
        distributed.torchrun_environment(env)


def test_a_fixed_gpu_index_is_refused_since_each_rank_uses_its_local_rank() -> None:
    with pytest.raises(DataError, match="--device cuda:1: with --distributed use auto, cpu or"):
        distributed.select_device("cuda:1", 0)
    assert distributed.select_device("cpu", 1) == torch.device("cpu")


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_a_bad_collective_timeout_is_named(value: str) -> None:
    with pytest.raises(DataError, match="ROAM_DIST_TIMEOUT"):
        distributed.timeout_seconds({"ROAM_DIST_TIMEOUT": value})


def test_the_global_batch_must_give_every_rank_a_query() -> None:
    assert distributed.per_rank_batch_size(1024, 3) == 341
    with pytest.raises(DataError, match="batch_size 2 is smaller than the 4 ranks"):
        distributed.per_rank_batch_size(2, 4)


# -- the model --------------------------------------------------------------------------------
def tiny_config(**settings: object) -> ExperimentConfig:
    overrides = {"model.dim": 8, "model.relation_dim": 8, "model.expert_hidden": 8,
                 "model.cost_hidden": 8, "model.num_groups": 2, "training.batch_size": 256,
                 "training.eval_every": 1, "training.lr": 0.01, "device": "cpu", **settings}
    return load_config(None, overrides, graph="synthetic-tiny")


def tiny_model(kg: MultimodalKG, **settings: object) -> torch.nn.Module:
    config = tiny_config(**settings)
    torch.manual_seed(0)  # as every rank does before building its model
    return build_model(config.model, kg.num_entities, 2 * kg.num_relations, kg.modalities)


def test_unused_parameters_are_found_where_a_variant_has_them(kg: MultimodalKG) -> None:
    cpu = torch.device("cpu")
    assert distributed.unused_parameters(tiny_model(kg), cpu, with_candidates=False) == []
    assert distributed.unused_parameters(tiny_model(kg, **{"model.model": "tucker"}), cpu,
                                         with_candidates=True) == []
    unused = distributed.unused_parameters(tiny_model(kg, **{"model.variant": "sep"}), cpu,
                                           with_candidates=False)
    assert unused and all(n.startswith("group_representation.attention") for n in unused)


def test_looking_for_unused_parameters_changes_nothing(kg: MultimodalKG) -> None:
    model = tiny_model(kg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    distributed.unused_parameters(model, torch.device("cpu"), with_candidates=False)
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_fingerprints_tell_identical_parameters_from_different_ones(kg: MultimodalKG) -> None:
    first, second = tiny_model(kg), tiny_model(kg)
    assert distributed.parameter_fingerprint(first) == distributed.parameter_fingerprint(second)
    with torch.no_grad():
        weight = second.relations.weight
        weight[0, 0] = torch.nextafter(weight[0, 0], torch.tensor(1.0))  # one ulp
    assert distributed.parameter_fingerprint(first)["sha256"] != \
        distributed.parameter_fingerprint(second)["sha256"]


# -- one rank, in this process ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def one_rank(monkeypatch: pytest.MonkeyPatch) -> Iterator[distributed.DistributedContext]:
    """A one-process gloo group in this process (the code paths of a real run, no torchrun)."""
    for name, value in {**TORCHRUN_ENV, "WORLD_SIZE": "1",
                        "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(distributed.CHECK_SYNC_VARIABLE, "1")
    context = distributed.init_distributed("cpu")
    try:
        yield context
    finally:
        distributed.teardown()


def quiet(_: str) -> None:
    pass


def last_parameters(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "last.pt", weights_only=True)["model"]


def test_a_one_rank_distributed_run_equals_the_plain_run(
        kg: MultimodalKG, tmp_path: Path, one_rank: distributed.DistributedContext) -> None:
    config = tiny_config(**{"training.epochs": 2})
    plain = run_training(config, kg, tmp_path / "plain", log=quiet, progress=False)
    ddp = run_training(config, kg, tmp_path / "ddp", log=quiet, progress=False,
                       context=one_rank)
    assert ddp.test == plain.test
    a, b = last_parameters(tmp_path / "plain"), last_parameters(tmp_path / "ddp")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # no "module."
    saved = json.loads((tmp_path / "ddp" / "ddp" / "rank-0.json").read_text())
    assert saved["fingerprint"]["sha256"] == distributed.parameter_fingerprint(
        build_trained(config, kg, a))["sha256"]


def build_trained(config: ExperimentConfig, kg: MultimodalKG,
                  state: dict[str, torch.Tensor]) -> torch.nn.Module:
    model = build_model(config.model, kg.num_entities, 2 * kg.num_relations, kg.modalities)
    model.load_state_dict(state)
    return model


def test_a_distributed_run_resumed_after_an_epoch_ends_like_the_uninterrupted_one(
        kg: MultimodalKG, tmp_path: Path, one_rank: distributed.DistributedContext) -> None:
    config = tiny_config(**{"training.epochs": 3, "training.regime": "negative-sampling",
                            "training.negatives": 4})
    straight = run_training(config, kg, tmp_path / "straight", log=quiet, progress=False,
                            context=one_rank)
    run_training(replace(config, training=replace(config.training, epochs=1)), kg,
                 tmp_path / "resumed", log=quiet, progress=False, context=one_rank)
    resumed = run_training(config, kg, tmp_path / "resumed", resume=True, log=quiet,
                           progress=False, context=one_rank)
    assert resumed.test == straight.test
    a, b = last_parameters(tmp_path / "straight"), last_parameters(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)


# -- two ranks under torchrun -----------------------------------------------------------------
def torchrun(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 pipelines/run.py ARGS``, bounded in time."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in distributed.TORCHRUN_VARIABLES}
    environment.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", ROAM_DATA_DIR=str(data_dir),
                       **env)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "--monitor-interval=0.5",  # torchrun polls every 5 s
               str(REPO / "pipelines" / "run.py"), *args]
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True,
                          timeout=LAUNCH_TIMEOUT_S)


def fingerprints(out: Path) -> list[dict[str, object]]:
    return [json.loads((out / "ddp" / f"rank-{r}.json").read_text())["fingerprint"]
            for r in range(2)]


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[subprocess.CompletedProcess, Path]:
    """One epoch on two ranks, parameters compared across ranks after every step."""
    folder = tmp_path_factory.mktemp("two-ranks")
    out = folder / "out"
    done = torchrun(["--graph", "synthetic-tiny", "--distributed", "--epochs", "1", "--dim", "16",
                     "--out", str(out), "--quiet"], folder / "data",
                    **{distributed.CHECK_SYNC_VARIABLE: "1"})
    return done, out


def test_two_ranks_under_torchrun_finish_with_identical_parameters_and_one_result(
        two_rank_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    done, out = two_rank_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.relative_to(out) for p in out.rglob("metrics.json")) == [
        Path("metrics.json")]
    first, second = fingerprints(out)
    assert first == second and first["numel"] > 0
    assert done.stdout.count("test (filtered, realistic ties)") == 1  # rank 0 alone reports
    assert "2 ranks (gloo) x 512 queries per step" in done.stdout  # default batch 1024
    assert json.loads((out / "metrics.json").read_text())["selected_epoch"] == 1


def test_a_two_rank_run_resumes_from_its_checkpoint(
        two_rank_run: tuple[subprocess.CompletedProcess, Path], tmp_path: Path) -> None:
    done, first_run = two_rank_run
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    shutil.copytree(first_run, out)
    resumed = torchrun(["--graph", "synthetic-tiny", "--distributed", "--epochs", "2", "--dim",
                        "16", "--out", str(out), "--quiet", "--resume"], tmp_path / "data")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch 1" in resumed.stdout
    with open(out / "history.csv") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [1, 2]
    first, second = fingerprints(out)
    assert first == second != fingerprints(first_run)[0]


def test_a_failing_rank_ends_the_whole_run_with_its_error(tmp_path: Path) -> None:
    """Rank 1 raises after its first step (the ROAM_FAIL_RANK test hook) while rank 0 waits in
    an all-reduce: torchrun must exit non-zero (the subprocess timeout bounds the wait) and the
    error must be printed."""
    done = torchrun(["--graph", "synthetic-tiny", "--distributed", "--epochs", "2", "--dim", "16",
                     "--out", str(tmp_path / "out"), "--quiet"], tmp_path / "data",
                    **{distributed.FAIL_RANK_VARIABLE: "1", distributed.TIMEOUT_VARIABLE: "120"})
    assert done.returncode != 0
    assert "ROAM_FAIL_RANK=1: rank 1 fails on purpose" in done.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()
