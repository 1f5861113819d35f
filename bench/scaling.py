"""Scaling of training: time per epoch and peak memory against entities and triples, for 1-N
training and large-graph mode (negative sampling, sparse entity tables, SparseAdam), in one
process and in two DDP processes (docs/SCALING.md).

    python bench/scaling.py --quick          # 10^4..10^5 entities, 10^5..10^6 triples, < 10 min
    python bench/scaling.py                  # 10^4..10^6 entities, 10^5..10^7 triples
    python bench/scaling.py --json runs/scaling.json --model tucker

Graphs are synthetic, structure only, built directly as tensors: ``R = 100`` relations drawn
uniformly, heads and tails drawn with a power-law skew (entity of rank ``i`` has probability
~ ``i^(-1/2)``; ids randomly permuted, so table accesses are scattered as in a real graph).

Every measurement runs in its own subprocess (so peak RSS is that configuration's):
``python bench/scaling.py --worker ...`` for one process, and for two processes
``python -m torch.distributed.run --standalone --nproc_per_node=2 bench/scaling.py --worker
--distributed ...`` (DDP over gloo, ``roam_graph.training.distributed``; the global batch is
split between the ranks, as in ``pipelines/run.py --distributed``). Each worker builds the model,
optimiser and sampler exactly as ``run_training`` does, runs ``--warmup`` steps, then times
``--steps`` steps (batch construction included) and EXTRAPOLATES to an epoch: seconds per epoch
= mean seconds per step x steps per epoch (queries of the epoch / batch size). Peak memory is
the process's peak resident set (``ru_maxrss``; the maximum over ranks for two processes), and
"above baseline" subtracts the resident set measured right after the imports.
Every process uses one thread (``OMP_NUM_THREADS=1``): two processes use two cores.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from roam_graph.model.config import MODELS, same_widths
from roam_graph.training.config import REGIMES

REPO = Path(__file__).resolve().parents[1]
RELATIONS = 100
#: 1-N; negative sampling with dense Adam (the default regime's optimiser); large-graph mode
MODES = (*REGIMES, "large-graph")
#: The models measured (docs/SCALING.md); MoMoK's scaling was not studied.
SCALED_MODELS = tuple(model for model in MODELS if model != "momok")
FULL_GRID = ((10**4, 10**5, 10**6), (10**5, 10**6, 10**7))
QUICK_GRID = ((10**4, 10**5), (10**5, 10**6))


# -- the worker: one configuration, one (or one per rank) process -----------------------------
def make_triples(entities: int, count: int, seed: int = 0) -> torch.Tensor:
    """int64 ``[count, 3]`` power-law triples over ``entities`` and ``RELATIONS`` (docstring)."""
    generator = torch.Generator().manual_seed(seed)
    permutation = torch.randperm(entities, generator=generator)

    def skewed() -> torch.Tensor:   # inverse CDF of p(x) ~ x^(-1/2) on [0, 1)
        rank = (entities * torch.rand(count, generator=generator) ** 2).long()
        return permutation[rank.clamp(max=entities - 1)]

    relations = torch.randint(0, RELATIONS, (count,), generator=generator)
    return torch.stack([skewed(), relations, skewed()], dim=1)


def rss_mb() -> float:
    """Current resident set (Linux), MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class OpCounter(TorchDispatchMode):
    """Counts the aten operators run (forward, backward and optimiser): on a GPU each is at least
    one kernel launch, which bounds the step rate of small batches (docs/SCALING.md)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        self.count += 1
        return func(*args, **(kwargs or {}))


def worker(args: argparse.Namespace) -> dict:
    from roam_graph.model import build_model, resolve_config, total_loss
    from roam_graph.sampling import (
        EdgeBatchSampler,
        NegativeSampler,
        OneToNSampler,
        UniformEntities,
    )
    from roam_graph.training import distributed
    from roam_graph.training.config import TrainingConfig
    from roam_graph.training.optimisers import make_optimiser
    from roam_graph.training.trainer import batch_inputs, seed_everything

    context = distributed.init_distributed("cpu") if args.distributed else None
    world, rank = (1, 0) if context is None else (context.world_size, context.rank)
    baseline = rss_mb()
    triples = make_triples(args.entities, args.triples)
    large, negative = args.mode == "large-graph", args.mode != "1-n"
    training = TrainingConfig(batch_size=args.batch_size, lr=1e-3, negatives=args.negatives,
                              regime="negative-sampling" if negative else "1-n",
                              large_graph=large)
    config = resolve_config(args.model, modalities=("structure",), **same_widths(args.dim),
                            num_groups=args.groups)
    seed_everything(0, torch.device("cpu"))   # as run_training: deterministic CPU kernels
    model = build_model(config, args.entities, 2 * RELATIONS, {})
    optimiser = make_optimiser(model, training)
    batch_size = args.batch_size // world
    if negative:
        negatives = NegativeSampler(args.negatives, RELATIONS, UniformEntities(args.entities),
                                    head_probability=torch.full((RELATIONS,), 0.5),
                                    chunk_size=args.negative_chunk)
        sampler = EdgeBatchSampler(triples, batch_size, num_relations=RELATIONS,
                                   transform=negatives)
    else:
        sampler = OneToNSampler.from_triples(triples, args.entities, RELATIONS, batch_size)
    if context is not None:
        sampler = sampler.shard(rank, world)
        model = distributed.wrap_model(model, context, negative, lambda _: None)
    sampler.set_epoch(1)
    model.train()
    device = torch.device("cpu")
    batches = iter(sampler)

    touched: list[int] = []

    def step() -> None:
        heads, relations, candidates, targets = batch_inputs(next(batches), 0.1, device)
        # distinct entities whose rows the step reads and updates (all N for 1-N)
        touched.append(args.entities if candidates is None else
                       len(torch.unique(torch.cat([heads, candidates.reshape(-1)]))))
        loss, _ = total_loss(model(heads, relations, candidates), targets, config.ot_weight)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    counter = OpCounter()
    if context is None:   # the first warm-up step also counts the operators it runs (not under
        with counter:     # DDP: a Python dispatch mode around its collectives can deadlock)
            step()
    else:
        step()
    for _ in range(args.warmup - 1):
        step()
    wall: list[float] = []
    cpu: list[float] = []
    budget_start = time.perf_counter()

    def more() -> bool:
        """Rank 0 decides for all: a rank stepping alone would wait forever in DDP."""
        go = torch.tensor([len(wall) < args.steps and (
            len(wall) < 2 or time.perf_counter() - budget_start < args.time_budget)])
        if context is not None:
            torch.distributed.broadcast(go, src=0)
        return bool(go)

    while more():
        started, started_cpu = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    # the median resists the other jobs of a shared machine better than the mean
    timing = torch.tensor([statistics.median(wall), statistics.median(cpu)], dtype=torch.float64)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    memory = torch.tensor([peak, peak - baseline], dtype=torch.float64)
    if context is not None:  # the slowest rank sets the pace of a DDP step
        torch.distributed.all_reduce(timing, op=torch.distributed.ReduceOp.MAX)
        torch.distributed.all_reduce(memory, op=torch.distributed.ReduceOp.MAX)
        # release DDP's reducer while the process group still exists (destroying the group
        # first and the DDP wrapper later at exit can hang on gloo)
        del model, optimiser
        gc.collect()
        torch.distributed.barrier()
        distributed.teardown()
    step_seconds, cpu_seconds = timing.tolist()
    return {"entities": args.entities, "triples": args.triples, "mode": args.mode,
            "processes": world, "model": args.model, "dim": args.dim,
            "batch_size": args.batch_size, "negatives": args.negatives if negative else None,
            "negative_chunk": args.negative_chunk if negative else None,
            "steps_timed": len(wall), "step_seconds": step_seconds,
            "step_cpu_seconds": cpu_seconds, "ops_per_step": counter.count or None,
            "entities_per_step": statistics.mean(touched),
            "steps_per_epoch": len(sampler), "epoch_seconds": step_seconds * len(sampler),
            "peak_rss_mb": float(memory[0]), "above_baseline_mb": float(memory[1]),
            "rank": rank}


# -- the driver: the grid, subprocesses, table and fits ----------------------------------------
def one_to_n_memory_gb(entities: int, batch_size: int) -> float:
    """Rough peak of a 1-N step: about 12 float32 ``[batch, N]`` tensors alive (per-modality
    partial scores, attention, scores, targets, loss terms and their gradients; 2.4 GB measured
    above baseline for ROAM at batch 512, N = 10^5), plus per-entity encodings. An estimate
    only, used to skip configurations that would not fit, never reported as a measurement."""
    return 48 * batch_size * entities / 1e9 + 64 * 4 * 4 * entities / 1e9


def run_configuration(args: argparse.Namespace, entities: int, triples: int, mode: str,
                      processes: int) -> dict:
    flags = ["--worker", "--entities", str(entities), "--triples", str(triples), "--mode", mode,
             "--model", args.model, "--dim", str(args.dim), "--groups", str(args.groups),
             "--batch-size", str(args.batch_size), "--negatives", str(args.negatives),
             "--steps", str(args.steps), "--warmup", str(args.warmup),
             "--time-budget", str(args.time_budget)]
    if args.negative_chunk:
        flags += ["--negative-chunk", str(args.negative_chunk)]
    script = str(Path(__file__).resolve())
    if processes == 1:
        command = [sys.executable, script, *flags]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", script, *flags, "--distributed"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO))
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env,
                            timeout=args.timeout)
    wall = time.perf_counter() - started
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        tail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"entities": entities, "triples": triples, "mode": mode,
                "processes": processes, "error": tail[:200], "wall_seconds": wall}
    row = json.loads(lines[0])
    row["wall_seconds"] = wall
    row["load_average_1min"] = os.getloadavg()[0]   # other jobs on the machine, for the record
    return row


def fit_exponents(rows: list[dict], key: str) -> tuple[float, float] | None:
    """Least squares ``log t = a + b log triples + c log entities``; ``(b, c)``."""
    points = [r for r in rows if r.get(key)]
    if len({r["triples"] for r in points}) < 2 or len({r["entities"] for r in points}) < 2:
        return None
    design = torch.tensor([[1.0, math.log(r["triples"]), math.log(r["entities"])]
                           for r in points], dtype=torch.float64)
    target = torch.tensor([[math.log(r[key])] for r in points], dtype=torch.float64)
    solution = torch.linalg.lstsq(design, target).solution.flatten()
    return float(solution[1]), float(solution[2])


def table(rows: list[dict]) -> str:
    lines = ["| mode | procs | entities | triples | s/step | CPU s/step | entities/step "
             "| steps/epoch | s/epoch (extrapolated) | peak RSS MB | above baseline MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        head = f"| {r['mode']} | {r['processes']} | {r['entities']:.0e} | {r['triples']:.0e} |"
        if "error" in r or "skipped" in r:
            lines.append(f"{head} {r.get('skipped') or 'failed: ' + r['error']} "
                         f"| | | | | | |")
            continue
        lines.append(f"{head} {r['step_seconds']:.3f} | {r['step_cpu_seconds']:.3f} | "
                     f"{r.get('entities_per_step', math.nan):,.0f} | {r['steps_per_epoch']:,} | "
                     f"{r['epoch_seconds']:,.1f} | {r['peak_rss_mb']:,.0f} | "
                     f"{r['above_baseline_mb']:,.0f} |")
    return "\n".join(lines)


def fits(rows: list[dict]) -> str:
    lines = ["| mode | procs | points | epoch time ~ triples^b | epoch time ~ entities^c "
             "| step time ~ entities^c | CPU step time ~ entities^c |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for mode in MODES:
        for processes in sorted({r["processes"] for r in rows}):
            group = [r for r in rows if r["mode"] == mode and r["processes"] == processes]
            epoch = fit_exponents(group, "epoch_seconds")
            step = fit_exponents(group, "step_seconds")
            cpu = fit_exponents(group, "step_cpu_seconds") or (math.nan, math.nan)
            if epoch and step:
                points = sum(1 for r in group if r.get("epoch_seconds"))
                lines.append(f"| {mode} | {processes} | {points} | {epoch[0]:.2f} | "
                             f"{epoch[1]:.2f} | {step[1]:.2f} | {cpu[1]:.2f} |")
    return "\n".join(lines)


def report(rows: list[dict]) -> str:
    fitted = fits(rows)
    if fitted.count("\n") < 2:   # header only: the grid spans less than two values of each
        return table(rows)
    return (f"{table(rows)}\n\nfitted exponents (log-log least squares over the grid, "
            f"log t = a + b log triples + c log entities):\n{fitted}")


def driver(args: argparse.Namespace) -> None:
    entity_grid, triple_grid = QUICK_GRID if args.quick else FULL_GRID
    if args.entities_grid:
        entity_grid = tuple(int(float(x)) for x in args.entities_grid.split(","))
    if args.triples_grid:
        triple_grid = tuple(int(float(x)) for x in args.triples_grid.split(","))
    processes = [int(p) for p in args.processes.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"error: --modes {unknown[0]!r} is not one of {', '.join(MODES)}")
    print(f"model {args.model} (structure only), dim {args.dim}, K={args.groups}, batch "
          f"{args.batch_size}, negatives {args.negatives} (large-graph), {args.warmup} warm-up + "
          f"{args.steps} timed steps per configuration, one thread per process", flush=True)
    rows, started = [], time.perf_counter()
    for entities in entity_grid:
        for triples in triple_grid:
            for mode in modes:
                for count in processes:
                    estimate = one_to_n_memory_gb(entities, args.batch_size)
                    if mode == "1-n" and estimate > args.memory_budget_gb:
                        row = {"entities": entities, "triples": triples, "mode": mode,
                               "processes": count, "skipped": f"skipped: ~{estimate:.0f} GB "
                               f"> --memory-budget-gb {args.memory_budget_gb:g}"}
                    else:
                        row = run_configuration(args, entities, triples, mode, count)
                    rows.append(row)
                    done = row.get("epoch_seconds")
                    print(f"  {mode:<11} procs {count} N={entities:.0e} T={triples:.0e}: "
                          + (f"{row['step_seconds'] * 1000:.1f} ms/step, {done:.1f} s/epoch, "
                             f"peak {row['peak_rss_mb']:.0f} MB" if done else
                             row.get("skipped") or f"failed: {row.get('error')}"), flush=True)
    print(f"\n{report(rows)}\n\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows}, indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the small grid (< 10 min)")
    p.add_argument("--model", default="roam", choices=SCALED_MODELS)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--groups", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=512, help="global batch (all ranks)")
    p.add_argument("--negatives", type=int, default=64)
    p.add_argument("--negative-chunk", type=int,
                   help="share each negative set among this many queries (strategy 'shared')")
    p.add_argument("--steps", type=int, default=10, help="timed steps per configuration (at "
                                                          "most)")
    p.add_argument("--time-budget", type=float,
                   help="stop timing after this many seconds (at least 2 steps; default 60, "
                        "15 with --quick)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--processes", default="1,2", help="comma-separated process counts")
    p.add_argument("--modes", help=f"comma-separated subset of {','.join(MODES)} (default: "
                                   f"all; 1-n,large-graph with --quick)")
    p.add_argument("--entities-grid", help="override, e.g. 1e4,1e5")
    p.add_argument("--triples-grid", help="override, e.g. 1e5,1e6")
    p.add_argument("--memory-budget-gb", type=float, default=4.0,
                   help="skip 1-N configurations estimated above this (per process)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per configuration")
    p.add_argument("--json", type=Path, help="also write all rows here")
    # worker-only flags
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--entities", type=int, help=argparse.SUPPRESS)
    p.add_argument("--triples", type=int, help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--from-json", type=Path, help="only print the table of a --json file")
    args = p.parse_args(argv)
    if args.from_json:
        rows = json.loads(args.from_json.read_text(encoding="utf-8"))["rows"]
        print(report(rows))
        return
    if args.time_budget is None:
        args.time_budget = 15.0 if args.quick else 60.0
    if args.modes is None:
        args.modes = "1-n,large-graph" if args.quick else ",".join(MODES)
    if args.warmup < 1 or args.steps < 2:
        raise SystemExit("error: --warmup must be >= 1 and --steps >= 2")
    if args.worker:
        torch.set_num_threads(1)
        row = worker(args)
        if row["rank"] == 0:
            print(json.dumps(row), flush=True)
        return
    driver(args)


if __name__ == "__main__":
    main()
