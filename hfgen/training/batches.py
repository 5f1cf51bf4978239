"""Deterministic, resumable, sharded batches: the data order is a pure function of (seed, micro-step)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ShardedEpochBatches(Sampler[list[int]]):
    """An endless stream of this process's micro-batches of indices.

    Epoch `e` shuffles with `torch.Generator().manual_seed(seed + e)`; each global batch of
    `batch_size * num_processes` indices is split into consecutive per-process slices, and the last
    incomplete global batch of an epoch is dropped. Starting at micro-step `start` yields exactly what an
    uninterrupted stream would have yielded from there - this is how resume continues the same data order
    without touching any global RNG.
    """

    def __init__(
        self, num_examples: int, batch_size: int, num_processes: int = 1, process_index: int = 0,
        seed: int = 0, start: int = 0,
    ) -> None:
        global_batch = batch_size * num_processes
        if num_examples < global_batch:
            raise ValueError(
                f"The dataset has {num_examples} examples, fewer than one global batch "
                f"({batch_size} per process x {num_processes} processes): lower --train_batch_size."
            )
        self.num_examples, self.batch_size, self.seed, self.start = num_examples, batch_size, seed, start
        self.num_processes, self.process_index = num_processes, process_index
        self.batches_per_epoch = num_examples // global_batch

    def __iter__(self) -> Iterator[list[int]]:
        epoch, first = divmod(self.start, self.batches_per_epoch)
        global_batch = self.batch_size * self.num_processes
        while True:
            order = torch.randperm(self.num_examples, generator=torch.Generator().manual_seed(self.seed + epoch))
            for b in range(first, self.batches_per_epoch):
                offset = b * global_batch + self.process_index * self.batch_size
                yield order[offset : offset + self.batch_size].tolist()
            epoch, first = epoch + 1, 0
