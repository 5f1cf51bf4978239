"""Deterministic, resumable, sharded batches: the data order is a pure function of (seed, micro-step)."""

from __future__ import annotations

from collections.abc import Iterator

import datasets
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..data.transforms import ROW_GENERATORS


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

    def positioned(self) -> Iterator[tuple[list[int], int]]:
        """Each micro-batch with the stream position of its first row: micro-step x global batch + this process's
        offset, so a row's position is the same on any number of processes and after any resume."""
        global_batch = self.batch_size * self.num_processes
        for micro_step, indices in enumerate(self, start=self.start):
            yield indices, micro_step * global_batch + self.process_index * self.batch_size


class SeededRows(Dataset):
    """`dataset[indices]` for a `positioned()` stream, whose custom transform also gets `ROW_GENERATORS`: one numpy
    generator per row, seeded by (seed, the row's position), so random crops and flips are a function of the run's
    seed and step - never of a process's RNG - and resume exactly."""

    def __init__(self, dataset: datasets.Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed
        form = dataset.format
        self.transform = form["format_kwargs"].get("transform") if form["type"] == "custom" else None
        self.rows = dataset.with_format(None)  # the raw rows the transform is applied to, here with the generators

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[list[int], int]) -> dict[str, torch.Tensor]:
        indices, first = key
        if self.transform is None:
            return self.dataset[indices]
        generators = [np.random.default_rng([self.seed, first + row]) for row in range(len(indices))]
        return self.transform(self.rows[indices] | {ROW_GENERATORS: generators})
