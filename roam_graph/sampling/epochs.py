"""Seeded, shuffled, resumable batch loops: the machinery the edge and 1-N samplers share.

Every random choice is derived from integers, never from a generator that carries state from
batch to batch:

- epoch ``e`` visits the items in ``randperm(n)`` drawn from a generator seeded by ``(seed, e)``;
- batch ``i`` of epoch ``e`` gets its own generator seeded by ``(seed, e, i)`` (used by batch
  transforms such as negative samplers).

So epoch ``e`` does not depend on what happened before it, a sampler restored from
``state_dict()`` (epoch, position) yields exactly the batches the uninterrupted one would have,
and worker processes produce the same batches as the main process: each batch is a pure function
of ``(seed, epoch, batch index)``.

``shard(rank, world_size)`` gives one data-parallel rank its disjoint share of every epoch
(docs/distributed.md): all ranks draw the same permutation and rank ``r`` takes every
``world_size``-th item from position ``r``.
"""

from __future__ import annotations

import copy
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

BatchT = TypeVar("BatchT")
LoopT = TypeVar("LoopT", bound="ShuffledBatches")

# Stream tags keep the permutation stream and the per-batch streams apart.
_PERMUTATION_STREAM = 0
_BATCH_STREAM = 1
_UINT64 = (1 << 64) - 1


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers with NumPy's ``SeedSequence`` (a hash designed for this):
    nearby inputs such as ``(seed, 0)`` and ``(seed, 1)`` give unrelated streams, which a plain
    ``seed + epoch`` would not."""
    words = np.random.SeedSequence([p & _UINT64 for p in parts]).generate_state(2, np.uint32)
    return ((int(words[0]) << 32) | int(words[1])) & ((1 << 63) - 1)


def seeded_generator(*parts: int) -> torch.Generator:
    """A fresh CPU ``torch.Generator`` seeded from ``derive_seed(*parts)``."""
    return torch.Generator().manual_seed(derive_seed(*parts))


def check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch size must be a positive integer, got {batch_size!r}")


class ShuffledBatches(ABC, Generic[BatchT]):
    """Batches over ``num_items`` items, reshuffled every epoch, resumable, optionally built in
    worker processes. Subclasses say how to turn item indices into a batch (``make_batch``).

    Iterating yields the remaining batches of the current epoch and then moves to the next epoch,
    so ``for batch in sampler`` is one epoch. ``position`` counts the batches already handed out
    in the current epoch: a ``state_dict()`` taken after a batch was used resumes after it.
    """

    #: Whether ``make_batch`` uses its generator (creating one costs a few microseconds).
    needs_generator: bool = False

    def __init__(self, num_items: int, batch_size: int, *, seed: int = 0, drop_last: bool = False,
                 num_workers: int = 0) -> None:
        check_batch_size(batch_size)
        if num_items <= 0:
            raise ValueError("nothing to sample: the sampler was given no items")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        if drop_last and num_items < batch_size:
            raise ValueError(f"drop_last with batch size {batch_size} > {num_items} items "
                             f"leaves no batch")
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = int(seed)
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.rank, self.world_size = 0, 1  # a shard of a data-parallel run (see ``shard``)
        self._epoch = 0
        self._position = 0
        self._pending = (0, 0)  # (epoch, first batch) the worker pool is asked for
        self._loader: DataLoader | None = None

    @abstractmethod
    def make_batch(self, indices: torch.Tensor, generator: torch.Generator | None) -> BatchT:
        """The batch made of items ``indices`` (int64); ``generator`` is the batch's own stream
        (``None`` unless ``needs_generator``)."""

    # -- epoch layout ------------------------------------------------------------------------
    def __len__(self) -> int:
        """Batches per epoch (of this shard)."""
        full, rest = divmod(self.shard_items, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    @property
    def shard_items(self) -> int:
        """Items this sampler visits per epoch: all, or ``num_items // world_size`` for a shard."""
        return self.num_items // self.world_size

    def shard(self: LoopT, rank: int, world_size: int) -> LoopT:
        """A copy that yields only rank ``rank``'s share of every epoch, for data-parallel
        training with ``world_size`` ranks (each builds its own shard; nothing is exchanged).

        Every rank draws the same epoch permutation (it depends on ``(seed, epoch)`` only),
        drops its last ``num_items % world_size`` entries (drop-last, as ``DistributedSampler``:
        padding would repeat items, and the dropped ones differ every epoch) and takes the items
        at positions ``rank, rank + world_size, ...`` of it. So the shards of an epoch are disjoint,
        their union is the epoch minus those fewer than ``world_size`` items, every rank runs the
        same number of batches of the same sizes (no rank waits in an all-reduce another never
        enters), and step ``i`` of all ranks together is batch ``i`` of the unsharded sampler
        with batch size ``batch_size * world_size``. Batch transforms get a generator seeded by
        ``(seed, epoch, i, rank, world_size)``: ranks draw independent negatives.
        ``shard(0, 1)`` yields exactly the batches of the unsharded sampler."""
        if self.world_size != 1:
            raise ValueError("this sampler is already a shard; shard the full sampler")
        if not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
        if not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..{world_size - 1}, got {rank!r}")
        if self.num_items < world_size:
            raise ValueError(f"{self.num_items} items cannot be shared by {world_size} ranks")
        if self.drop_last and self.num_items // world_size < self.batch_size:
            raise ValueError(f"drop_last with batch size {self.batch_size} > "
                             f"{self.num_items // world_size} items per rank leaves no batch")
        twin = copy.copy(self)  # __getstate__: the copy starts without a worker pool
        twin.rank, twin.world_size, twin._position = rank, world_size, 0
        return twin

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def position(self) -> int:
        """Batches of the current epoch already yielded."""
        return self._position

    def permutation(self, epoch: int) -> torch.Tensor:
        """The item order of ``epoch``: a function of ``(seed, epoch)`` only."""
        generator = seeded_generator(_PERMUTATION_STREAM, self.seed, epoch)
        return torch.randperm(self.num_items, generator=generator)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The items this sampler visits in ``epoch``, in order: the permutation, or this
        shard's share of it (see ``shard``)."""
        order = self.permutation(epoch)
        if self.world_size == 1:
            return order
        return order[:self.shard_items * self.world_size][self.rank::self.world_size]

    def batch_at(self, order: torch.Tensor, epoch: int, index: int) -> BatchT:
        """Batch ``index`` of an epoch whose item order (``epoch_order``) is ``order``."""
        indices = order[index * self.batch_size:(index + 1) * self.batch_size]
        generator = None
        if self.needs_generator:
            shard = () if self.world_size == 1 else (self.rank, self.world_size)
            generator = seeded_generator(_BATCH_STREAM, self.seed, epoch, index, *shard)
        return self.make_batch(indices, generator)

    # -- iteration ---------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first batch."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._epoch, self._position = int(epoch), 0

    def __iter__(self) -> Iterator[BatchT]:
        if self._position >= len(self):  # the previous epoch was consumed to its last batch
            self._epoch, self._position = self._epoch + 1, 0
        epoch, start = self._epoch, self._position
        if self.num_workers == 0:
            order = self.epoch_order(epoch)
            source: Any = (self.batch_at(order, epoch, i) for i in range(start, len(self)))
        else:
            source = self._worker_batches(epoch, start)
        for index, batch in enumerate(source, start):
            self._position = index + 1
            yield batch
        self._epoch, self._position = epoch + 1, 0

    def _worker_batches(self, epoch: int, start: int) -> Iterator[BatchT]:
        """Batches ``start..`` of ``epoch`` built by persistent ``DataLoader`` workers.

        Workers are forked once per sampler (forking costs ~0.5 s, too much per epoch); a task
        is ``(epoch, batch index)`` and each worker derives the epoch's permutation itself, so
        a batch is the same function of its index as in the main process. The DataLoader
        returns batches in task order."""
        if self._loader is None:
            # The loader must not hold the sampler (a reference cycle leaves the pool to the
            # garbage collector, whose shutdown path waited 5 s per worker): the dataset gets a
            # copy without the pool, the task list a weak reference.
            self._loader = DataLoader(_EpochDataset(copy.copy(self)), batch_size=None,
                                      sampler=_PendingBatches(self), collate_fn=_identity,
                                      num_workers=self.num_workers, persistent_workers=True)
        self._pending = (epoch, start)
        return iter(self._loader)

    def close(self) -> None:
        """Stop the worker processes now (they also stop when the sampler is deleted)."""
        self._loader = None

    def __getstate__(self) -> dict[str, Any]:
        # The worker pool stays with its process: copies of a sampler start their own.
        return {**self.__dict__, "_loader": None}

    # -- checkpointing -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, int]:
        """Epoch and position, plus what must match for the position to mean the same batches."""
        return {"epoch": self._epoch, "position": self._position, "seed": self.seed,
                "num_items": self.num_items, "batch_size": self.batch_size,
                "drop_last": int(self.drop_last), "rank": self.rank,
                "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        mine = self.state_dict()
        state = {"rank": 0, "world_size": 1, **state}  # states saved before sharding existed
        for key in ("seed", "num_items", "batch_size", "drop_last", "rank", "world_size"):
            if int(state[key]) != mine[key]:
                raise ValueError(f"sampler state was saved with {key}={state[key]}, but this "
                                 f"sampler has {key}={mine[key]}: resuming would change the "
                                 f"batches")
        if not 0 <= int(state["position"]) <= len(self):
            raise ValueError(f"sampler state position {state['position']} is outside "
                             f"0..{len(self)}")
        self._epoch, self._position = int(state["epoch"]), int(state["position"])


class _EpochDataset(Dataset):
    """Map-style view for ``DataLoader`` workers: item ``(epoch, i)`` is batch ``i`` of
    ``epoch``. Each worker keeps the permutation of the epoch it is working on."""

    def __init__(self, loop: ShuffledBatches) -> None:
        self.loop = loop
        self.epoch, self.order = -1, torch.empty(0, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.loop)

    def __getitem__(self, task: tuple[int, int]) -> Any:
        epoch, index = task
        if epoch != self.epoch:
            self.epoch, self.order = epoch, self.loop.epoch_order(epoch)
        return self.loop.batch_at(self.order, epoch, index)


class _PendingBatches(Sampler):
    """The tasks of the iteration being started: ``(epoch, i)`` for the remaining batches."""

    def __init__(self, loop: ShuffledBatches) -> None:
        self.loop = weakref.ref(loop)

    def _state(self) -> tuple[int, int, int]:
        loop = self.loop()
        assert loop is not None, "the sampler owning this worker pool was deleted"
        return (*loop._pending, len(loop))

    def __len__(self) -> int:
        _, start, total = self._state()
        return total - start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, start, total = self._state()
        return ((epoch, i) for i in range(start, total))


def _identity(batch: Any) -> Any:
    # Module-level (picklable) collate function: batches are already tensors or dataclasses.
    return batch
