"""Stream a split of parquet shards - a local folder or a Hub dataset repo, as `Dataset.push_to_hub` writes them -
without downloading the dataset first: rows are read one shard at a time, at most `max_shards` of them held in
memory, none kept on disk.

The shards are read in the order the training stream asks for (`hfgen.training.batches`: shard order permuted per
epoch, rows shuffled within a shard), so a micro-batch's rows come from one shard, or two at a boundary. Random
access by global row index keeps the Trainer's contract - `dataset[indices]`, a batched transform - unchanged.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.table import InMemoryTable
from huggingface_hub import HfFileSystem

SHARD_PATTERNS = ("{split}-*.parquet", "{split}/*.parquet", "*/{split}-*.parquet", "*/{split}/*.parquet")
"""Where a split's shards are: `data/train-00000-of-00004.parquet` (push_to_hub), `train/*.parquet`, ..."""


def find_shards(source: str, split: str) -> tuple[list[str], HfFileSystem | None]:
    """The parquet files of `split` in a local folder or a Hub dataset repo (`owner/name`), sorted; and the Hub
    filesystem they are read through (None for local files)."""
    local = Path(source).expanduser()
    if local.is_dir():
        files = sorted({str(p) for pattern in SHARD_PATTERNS for p in local.glob(pattern.format(split=split))})
        filesystem = None
    else:
        filesystem = HfFileSystem()
        try:
            listed = filesystem.find(f"datasets/{source}")
        except (OSError, ValueError) as error:
            raise FileNotFoundError(
                f"--streaming: {source!r} is neither a local folder nor a readable Hub dataset repo ({error}): pass a "
                "folder of parquet shards or a Hub dataset id."
            ) from None
        root = f"datasets/{source}/"
        files = sorted(f for f in listed if any(fnmatch.fnmatch(f[len(root):], p.format(split=split)) for p in SHARD_PATTERNS))
    if not files:
        raise ValueError(
            f"--streaming: {source!r} has no parquet shards of split {split!r} (looked for "
            f"{', '.join(p.format(split=split) for p in SHARD_PATTERNS)}): write them with `Dataset.push_to_hub` or "
            "`Dataset.to_parquet`, or drop --streaming."
        )
    return files, filesystem


class StreamedImages:
    """The rows of a split of parquet shards by global index, like a `datasets.Dataset` (`len`, `features`,
    `dataset[indices]`, `with_transform`), loading each shard when a row of it is asked for."""

    def __init__(self, source: str, split: str = "train", max_shards: int = 2) -> None:
        self.source, self.split, self.max_shards = source, split, max_shards
        self.files, self.filesystem = find_shards(source, split)
        metadata = [self._metadata(file) for file in self.files]  # each shard's footer only
        self.shard_sizes = [m.num_rows for m in metadata]
        self.features = datasets.Features.from_arrow_schema(metadata[0].schema.to_arrow_schema())
        self.starts = np.cumsum([0, *self.shard_sizes])
        self.transform: Callable[[dict], dict] | None = None
        self._loaded: OrderedDict[int, datasets.Dataset] = OrderedDict()

    def _metadata(self, file: str) -> pq.FileMetaData:
        if self.filesystem is None:
            return pq.read_metadata(file)
        with self.filesystem.open(file, "rb") as opened:
            return pq.read_metadata(opened)

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def format(self) -> dict:
        """As `datasets.Dataset.format` says it, for the Trainer's per-sample generators (`SeededRows`)."""
        if self.transform is None:
            return {"type": None, "format_kwargs": {}}
        return {"type": "custom", "format_kwargs": {"transform": self.transform}}

    def with_transform(self, transform: Callable[[dict], dict]) -> StreamedImages:
        view = copy.copy(self)
        view.transform = transform
        return view

    def with_format(self, type: None = None) -> StreamedImages:
        return self.with_transform(None)

    def shard(self, index: int) -> datasets.Dataset:
        """Shard `index` as a Dataset in memory; the least recently used one goes when more than `max_shards` are."""
        if index in self._loaded:
            self._loaded.move_to_end(index)
            return self._loaded[index]
        self._loaded[index] = datasets.Dataset(InMemoryTable(self._read(index)))  # features from the schema's metadata
        while len(self._loaded) > self.max_shards:
            self._loaded.popitem(last=False)
        return self._loaded[index]

    def _read(self, index: int) -> pa.Table:
        """Shard `index` as an Arrow table; a Hub shard through a temporary file, gone once read: the disk holds at
        most the shard being read."""
        if self.filesystem is None:
            return pq.read_table(self.files[index])
        with tempfile.TemporaryDirectory() as folder:
            local = os.path.join(folder, "shard.parquet")
            self.filesystem.get_file(self.files[index], local)
            return pq.read_table(local)

    def sample(self, num_rows: int, seed: int = 0) -> datasets.Dataset:
        """At most `num_rows` rows in memory: whole shards in a seeded order, the last one cut - what evaluation
        judges against when a split is too big to read whole. All rows, in shard order, when they fit."""
        if num_rows >= len(self):
            order = range(len(self.files))
        else:
            order = np.random.default_rng(seed).permutation(len(self.files)).tolist()
        parts, total = [], 0
        for index in order:
            if total >= num_rows:
                break
            part = datasets.Dataset(InMemoryTable(self._read(index)))
            parts.append(part.select(range(min(len(part), num_rows - total))))
            total += len(parts[-1])
        return datasets.concatenate_datasets(parts)

    def rows(self, indices: Sequence[int]) -> dict[str, list]:
        """The rows at global `indices`, as one batch of columns, in the order asked."""
        indices = np.asarray(indices, dtype=np.int64)
        shards = np.searchsorted(self.starts, indices, side="right") - 1
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"Row index out of range for {len(self)} rows.")
        batch: dict[str, list] = {name: [None] * len(indices) for name in self.features}
        for shard in dict.fromkeys(shards.tolist()):  # in order of first use
            where = np.flatnonzero(shards == shard)
            part = self.shard(shard)[(indices[where] - self.starts[shard]).tolist()]
            for name, values in part.items():
                for position, value in zip(where, values):
                    batch[name][position] = value
        return batch

    def __getitem__(self, key: int | slice | Sequence[int]) -> dict:
        if isinstance(key, int):
            return {name: values[0] for name, values in self[[key]].items()}
        indices = range(len(self))[key] if isinstance(key, slice) else key
        batch = self.rows(list(indices))
        return self.transform(batch) if self.transform is not None else batch
