"""Data-parallel training with PyTorch DDP under ``torchrun`` (docs/distributed.md).

    torchrun --standalone --nproc_per_node=2 pipelines/run.py --graph synthetic --distributed

Each rank builds the same model from the same seed (DDP also broadcasts rank 0's parameters when
it wraps the model), trains on its disjoint shard of every epoch (``ShuffledBatches.shard``) with
``batch_size // world_size`` queries per step, and DDP averages the gradients, so every step
updates identical parameters on all ranks. Rank 0 alone evaluates, writes history, metrics and
checkpoints; the others wait for its early-stopping decision (``share``).

No rank may wait forever for a dead one: collectives time out after ``$ROAM_DIST_TIMEOUT``
seconds (default 1800, torch's own default, long enough for rank 0's evaluation of a large graph),
the process group is destroyed in a ``finally``, and torchrun stops all ranks when one exits with
an error. Two environment switches exist for tests and debugging:

- ``ROAM_CHECK_SYNC=1``: after every optimiser step all ranks compare parameter fingerprints and
  raise if they differ (costs a hash of all parameters per step: debugging only);
- ``ROAM_FAIL_RANK=<r>``: rank ``r`` raises after its first step (tests/test_distributed.py uses
  it to check that a failing rank ends the whole run instead of leaving the others hanging).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from roam_graph.atomic import write_json
from roam_graph.data.errors import DataError

#: What torchrun sets for every worker; ``--distributed`` needs all of them.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
LAUNCH_EXAMPLE = ("torchrun --standalone --nproc_per_node=2 pipelines/run.py --graph synthetic "
                  "--distributed")
TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_S = "ROAM_DIST_TIMEOUT", 1800.0
CHECK_SYNC_VARIABLE, FAIL_RANK_VARIABLE = "ROAM_CHECK_SYNC", "ROAM_FAIL_RANK"

# Tensors this module hands to collectives stay referenced here until the process group is gone.
# A gloo worker thread may drop its reference after the call has returned; if Python's reference
# is gone by then, that drop needs the GIL, which the main thread holds inside
# destroy_process_group while it waits for that very thread: a deadlock seen here with torch 2.2
# (pytorch/pytorch#56297; pull request #154976 releases the GIL there). torch's
# broadcast_object_list and all_gather_object create such tensors internally, hence the small
# replacements below.
_KEPT: deque[torch.Tensor] = deque(maxlen=64)


def _kept(tensor: torch.Tensor) -> torch.Tensor:
    _KEPT.append(tensor)
    return tensor


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the run; ``device`` is ``cuda:LOCAL_RANK`` on GPUs."""
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str
    check_sync: bool = False
    fail: bool = False  # the ROAM_FAIL_RANK test hook names this rank

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def torchrun_environment(env: Mapping[str, str]) -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's variables, or a DataError naming the
    missing one and showing how to launch."""
    missing = [name for name in TORCHRUN_VARIABLES if not env.get(name)]
    if missing:
        raise DataError(f"--distributed: environment variable {missing[0]} is not set (missing: "
                        f"{', '.join(missing)}); launch with torchrun, which sets them, e.g. "
                        f"`{LAUNCH_EXAMPLE}`")
    try:
        rank, world, local = (int(env[name]) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError:
        raise DataError(f"--distributed: RANK={env['RANK']!r}, WORLD_SIZE={env['WORLD_SIZE']!r}, "
                        f"LOCAL_RANK={env['LOCAL_RANK']!r} must be integers") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise DataError(f"--distributed: RANK={rank} is not in 0..WORLD_SIZE-1 (WORLD_SIZE="
                        f"{world}) or LOCAL_RANK={local} < 0")
    return rank, world, local


def refuse_torchrun_without_flag(env: Mapping[str, str]) -> None:
    """Launched by torchrun with several ranks but no ``--distributed``: every rank would train
    the whole model alone and write the same files; refuse instead."""
    world = env.get("WORLD_SIZE", "1")
    if world.isdigit() and int(world) > 1:
        raise DataError(f"started with WORLD_SIZE={world} (torchrun?) but without --distributed: "
                        f"every rank would train alone and overwrite the same files; add "
                        f"--distributed")


def select_device(name: str, local_rank: int) -> torch.device:
    """``cpu``; or ``cuda:LOCAL_RANK`` for ``cuda`` (and ``auto`` when a GPU is present)."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if name not in ("auto", "cuda"):
        raise DataError(f"--device {name}: with --distributed use auto, cpu or cuda (rank r "
                        f"uses cuda:LOCAL_RANK; choose GPUs with CUDA_VISIBLE_DEVICES)")
    if not torch.cuda.is_available():
        raise DataError(f"--device {name}: CUDA is not available on this machine")
    if local_rank >= torch.cuda.device_count():
        raise DataError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPU(s): "
                        f"use at most that many processes per node (--nproc_per_node)")
    return torch.device("cuda", local_rank)


def timeout_seconds(env: Mapping[str, str]) -> float:
    raw = env.get(TIMEOUT_VARIABLE, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not value > 0:
        raise DataError(f"{TIMEOUT_VARIABLE}={raw!r}: give a positive number of seconds")
    return value


def init_distributed(device_name: str = "auto") -> DistributedContext:
    """Join the process group torchrun describes (gloo on CPU, NCCL on GPU)."""
    env = os.environ
    rank, world, local = torchrun_environment(env)
    device = select_device(device_name, local)
    timeout = timedelta(seconds=timeout_seconds(env))
    fail_rank = env.get(FAIL_RANK_VARIABLE, "")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout)
    return DistributedContext(rank, world, local, device, backend,
                              check_sync=env.get(CHECK_SYNC_VARIABLE, "") not in ("", "0"),
                              fail=fail_rank == str(rank))


def teardown() -> None:
    """Leave the process group (a no-op when none was started); call it in a ``finally``. No
    barrier here: after an error the other ranks may never arrive."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _KEPT.clear()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def share(context: DistributedContext | None, value: Any, src: int = 0) -> Any:
    """``value`` as rank ``src`` has it, on every rank (a picklable object from our own ranks;
    identity without ``context``)."""
    if context is None:
        return value
    sending = context.rank == src
    payload = pickle.dumps(value) if sending else b""
    size = _kept(torch.tensor([len(payload)], dtype=torch.int64, device=context.device))
    dist.broadcast(size, src)
    if sending:
        buffer = torch.from_numpy(np.frombuffer(payload, dtype=np.uint8).copy())
    else:
        buffer = torch.empty(int(size.item()), dtype=torch.uint8)
    buffer = _kept(buffer.to(context.device))
    dist.broadcast(buffer, src)
    return value if sending else pickle.loads(buffer.cpu().numpy().tobytes())


@contextmanager
def local_main_first(context: DistributedContext | None) -> Iterator[None]:
    """Run the body on each node's local rank 0 first, then on the other ranks (e.g. preparing
    a graph: one process fills the cache, the others read it)."""
    if context is not None and context.local_rank != 0:
        barrier()
    yield
    if context is not None and context.local_rank == 0:
        barrier()


def per_rank_batch_size(batch_size: int, world_size: int) -> int:
    """``batch_size`` is the global batch: each rank takes ``batch_size // world_size`` (so the
    configured learning rate and batch size mean the same as in a single process)."""
    if batch_size < world_size:
        raise DataError(f"batch_size {batch_size} is smaller than the {world_size} ranks: each "
                        f"rank needs at least one query per step (--batch-size)")
    return batch_size // world_size


# -- the model ------------------------------------------------------------------------------
def unused_parameters(model: nn.Module, device: torch.device, with_candidates: bool
                      ) -> list[str]:
    """Trainable parameters that get no gradient in a training step, found with one tiny
    forward/backward (two queries of entity 0 and relation 0, so every query takes the same
    expert group: the fewest parameters a step can use). Free of side effects: RNG states and
    buffers (BatchNorm statistics) are restored and no ``.grad`` is written. Static per
    model variant, e.g. the group-attention MLP of the SEP and MGE layouts is never used."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    was_training = model.training
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        model.train()
        ids = torch.zeros(2, dtype=torch.int64, device=device)
        output = model(ids, ids, ids[:, None] if with_candidates else None)
        total = output.ot_loss.float() + sum(s.float().sum() for s in output.head_scores)
        if output.routing_signal is not None:  # the critic trains the cost (model/loss.py)
            total = total + output.routing_signal.cost.float().sum()
        grads = torch.autograd.grad(total, [p for _, p in named], allow_unused=True)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            buffer.copy_(buffers[name])
    model.train(was_training)
    return [name for (name, _), grad in zip(named, grads, strict=True) if grad is None]


def wrap_model(model: nn.Module, context: DistributedContext, with_candidates: bool,
               log: Callable[[str], None]) -> DistributedDataParallel:
    """``model`` in DDP; ``find_unused_parameters`` only when ``unused_parameters`` finds some
    (it costs a graph traversal per step; without it DDP would wait forever for them)."""
    sparse = [name for name, m in model.named_modules()
              if isinstance(m, nn.Embedding) and m.sparse]
    if sparse and context.backend == "nccl":
        raise DataError(f"sparse embeddings ({', '.join(sparse)}) cannot be all-reduced by "
                        f"NCCL: train on CPU (gloo) or without sparse gradients")
    unused = unused_parameters(model, context.device, with_candidates)
    if unused:
        log(f"DDP: find_unused_parameters=True ({len(unused)} parameter(s) never get a gradient "
            f"in this model: {', '.join(unused[:4])}{' ...' if len(unused) > 4 else ''})")
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids,
                                   find_unused_parameters=bool(unused))


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def parameter_fingerprint(model: nn.Module) -> dict[str, Any]:
    """Float64 sum and SHA-256 of all parameters (names, shapes and bytes, in module order):
    equal fingerprints mean bit-identical parameters."""
    digest, total, count = hashlib.sha256(), 0.0, 0
    for name, parameter in unwrap(model).named_parameters():
        values = parameter.detach().cpu().contiguous()
        digest.update(f"{name}{tuple(values.shape)}{values.dtype}".encode())
        digest.update(values.reshape(-1).view(torch.uint8).numpy().tobytes())
        total += float(values.double().sum())
        count += values.numel()
    return {"sum": total, "sha256": digest.hexdigest(), "numel": count}


def check_in_sync(context: DistributedContext, model: nn.Module, where: str) -> dict[str, Any]:
    """Gather every rank's fingerprint; raise (on every rank alike) if any differs."""
    mine = parameter_fingerprint(model)
    row = _kept(torch.tensor([mine["sum"], mine["numel"], *bytes.fromhex(mine["sha256"])],
                             dtype=torch.float64, device=context.device))
    rows = [_kept(torch.empty_like(row)) for _ in range(context.world_size)]
    dist.all_gather(rows, row)
    everyone = [{"sum": float(r[0]), "sha256": bytes(int(v) for v in r[2:]).hex(),
                 "numel": int(r[1])} for r in (r.cpu() for r in rows)]
    if any(f != everyone[0] for f in everyone):
        listing = "; ".join(f"rank {r}: sum {f['sum']!r} sha256 {f['sha256'][:12]}"
                            for r, f in enumerate(everyone))
        raise RuntimeError(f"parameters differ across ranks {where}: {listing}")
    return everyone[0]


def after_step(context: DistributedContext, model: nn.Module, epoch: int, step: int) -> None:
    """Per-step debugging and test hooks (module docstring); nothing unless switched on."""
    if context.fail:
        raise RuntimeError(f"{FAIL_RANK_VARIABLE}={context.rank}: rank {context.rank} fails on "
                           f"purpose after epoch {epoch} step {step} (test hook)")
    if context.check_sync:
        check_in_sync(context, model, f"after epoch {epoch} step {step}")


def reduce_epoch(context: DistributedContext, sums: torch.Tensor, seen: int
                 ) -> tuple[torch.Tensor, int]:
    """Loss sums averaged over ranks (every rank ran as many steps) and queries summed."""
    totals = _kept(torch.cat([sums.double(), sums.new_tensor([seen], dtype=torch.float64)]))
    dist.all_reduce(totals)
    return (totals[:-1] / context.world_size).to(sums.dtype), int(totals[-1].item())


def finish_training(context: DistributedContext, model: nn.Module, out: Path,
                    log: Callable[[str], None]) -> None:
    """Write ``ddp/rank-<r>.json`` (this rank's parameter fingerprint after the last step)
    and check that all ranks hold identical parameters."""
    fingerprint = parameter_fingerprint(model)
    write_json(out / "ddp" / f"rank-{context.rank}.json",
               {"rank": context.rank, "world_size": context.world_size,
                "backend": context.backend, "fingerprint": fingerprint})
    common = check_in_sync(context, model, "after training")
    log(f"DDP: parameters identical on all {context.world_size} ranks (sha256 "
        f"{common['sha256'][:12]})")
