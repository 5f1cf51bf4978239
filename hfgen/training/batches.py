"""Deterministic, resumable, elastic batches: the data order is a pure function of (seed, global sample index).

Sample `q` of the stream (counting from the first sample of the run) is example `order_e[q mod E]` of the dataset,
where epoch `e = q // E` shuffles with `torch.Generator().manual_seed(seed + e)` and `E` is the dataset's size
rounded down to whole global batches (the rest of an epoch is dropped, as `drop_last` does). A dataset read in
shards (`--streaming`) is shuffled shard-wise instead, so a micro-batch reads one shard (two at a boundary): the
shard order is permuted per epoch, then each shard's rows are permuted whole - a shuffle buffer of one shard,
and, being a function of (seed, epoch), restored exactly on resume. Optimizer step `s`
trains on samples `s * G ... s * G + G - 1`, G = per-process batch x processes x accumulation steps, split into
micro-batches in order: micro-step `a` of process `p` gets samples `s * G + (a * P + p) * B ... + B - 1`. So the
samples of every optimizer step - and with `hfgen.randomness`, their noise - depend on G only: a run resumes on
any number of processes with the same stream.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import datasets
import torch
from torch.utils.data import Dataset, Sampler

from ..data.transforms import ROW_GENERATORS
from ..randomness import sample_numpy_generators, sample_seed

AUGMENTATION = "augmentation"
"""The purpose the per-sample generators of data transforms are seeded with (see `hfgen.randomness`)."""


class ShardedEpochBatches(Sampler[list[int]]):
    """An endless stream of this process's micro-batches of dataset indices, from micro-step `start` on.

    Starting at micro-step `start` yields exactly what an uninterrupted stream would have yielded from there - this
    is how resume continues the same data order without touching any global RNG.
    """

    def __init__(
        self, num_examples: int, batch_size: int, num_processes: int = 1, process_index: int = 0,
        seed: int = 0, start: int = 0, accumulation_steps: int = 1, shard_sizes: Sequence[int] | None = None,
    ) -> None:
        global_batch = batch_size * num_processes * accumulation_steps
        if num_examples < global_batch:
            raise ValueError(
                f"The dataset has {num_examples} examples, fewer than one global batch ({batch_size} per process x "
                f"{num_processes} processes x {accumulation_steps} accumulation steps): lower --train_batch_size."
            )
        self.num_examples, self.batch_size, self.seed, self.start = num_examples, batch_size, seed, start
        self.num_processes, self.process_index = num_processes, process_index
        self.samples_per_epoch = num_examples // global_batch * global_batch
        self.shard_sizes = list(shard_sizes) if shard_sizes is not None else None
        self._orders: dict[int, torch.Tensor] = {}  # the last two epochs' orders: the stream's and the prefetch's

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """(num_examples,) the dataset indices of epoch `epoch`, in stream order."""
        generator = torch.Generator().manual_seed(self.seed + epoch)
        if self.shard_sizes is None:
            return torch.randperm(self.num_examples, generator=generator)
        starts = [0, *itertools.accumulate(self.shard_sizes)]
        parts = []
        for shard in torch.randperm(len(self.shard_sizes), generator=generator).tolist():
            rows = torch.Generator().manual_seed(sample_seed(self.seed, epoch, f"shard-{shard}"))
            parts.append(starts[shard] + torch.randperm(self.shard_sizes[shard], generator=rows))
        return torch.cat(parts)

    def _cached_order(self, epoch: int) -> torch.Tensor:
        if epoch not in self._orders:
            self._orders = {e: order for e, order in self._orders.items() if e == epoch - 1} | {epoch: self.epoch_order(epoch)}
        return self._orders[epoch]

    def dataset_index(self, position: int) -> int:
        """The dataset index of stream position `position` (counting from the first sample of the run)."""
        epoch, offset = divmod(position, self.samples_per_epoch)
        return int(self._cached_order(epoch)[offset])

    def __iter__(self) -> Iterator[list[int]]:
        for indices, _ in self.positioned():
            yield indices

    def positioned(self) -> Iterator[tuple[list[int], int]]:
        """Each micro-batch with the stream index of its first sample (its samples are consecutive in the stream)."""
        per_micro_step = self.batch_size * self.num_processes
        for micro_step in range(self.start, 2**62):
            first = micro_step * per_micro_step + self.process_index * self.batch_size
            epoch, offset = divmod(first, self.samples_per_epoch)
            yield self._cached_order(epoch)[offset : offset + self.batch_size].tolist(), first


class MicroBatch(NamedTuple):
    """One process's micro-batch: the stream index of its first sample (its samples are consecutive in the stream),
    the dataset indices of its samples, and the batch itself."""

    first: int
    indices: list[int]
    batch: dict[str, torch.Tensor]


class SeededRows(Dataset):
    """`dataset[indices]` for a `positioned()` stream, as a `MicroBatch`. A custom transform also gets
    `ROW_GENERATORS`: one numpy generator per sample, seeded by (seed, the sample's stream index), so random crops and
    flips are a function of the run's seed and the sample - never of a process's RNG - and resume exactly.

    A streamed dataset (`hfgen.data.shards`) is told, with each micro-batch, the row one shard further down the
    stream (`batches`), so it fetches the next shard in the background while the current one trains.
    """

    def __init__(self, dataset: datasets.Dataset, seed: int, batches: ShardedEpochBatches | None = None) -> None:
        self.dataset, self.seed, self.batches = dataset, seed, batches
        form = dataset.format
        self.transform = form["format_kwargs"].get("transform") if form["type"] == "custom" else None
        self.rows = dataset.with_format(None)  # the raw rows the transform is applied to, here with the generators

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[list[int], int]) -> MicroBatch:
        indices, first = key
        if hasattr(self.dataset, "readable"):  # a streamed dataset: drop the images skipped as unreadable, prefetch
            indices = self.dataset.readable(indices)
            if self.batches is not None:
                self.dataset.prefetch(self.batches.dataset_index(first + self.dataset.typical_shard_rows))
        if self.transform is None:
            return MicroBatch(first, indices, self.dataset[indices])
        generators = sample_numpy_generators(self.seed, range(first, first + len(indices)), AUGMENTATION)
        return MicroBatch(first, indices, self.transform(self.rows[indices] | {ROW_GENERATORS: generators}))
