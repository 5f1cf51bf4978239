"""Stream a split of shards - parquet (as `Dataset.push_to_hub` writes them) or webdataset `.tar`, in a local folder or
a Hub dataset repo - without downloading the dataset first: rows are read one shard at a time, at most `max_shards`
of them held in memory, none kept on disk.

The shards are read in the order the training stream asks for (`hfgen.training.batches`: shard order permuted per
epoch, rows shuffled within a shard), so a micro-batch's rows come from one shard, or two at a boundary. Random
access by global row index keeps the Trainer's contract - `dataset[indices]`, a batched transform - unchanged.

Faults: a Hub read that fails is retried with exponential backoff (1, 2, 4, ... s), then ends the stream with
`ShardUnavailable`; a shard that is not a readable parquet/tar file is a `CorruptShard`, an image that does not
decode a `CorruptSample` naming its shard and row - or, with `skip_bad_samples`, a logged skip.
"""

from __future__ import annotations

import fnmatch
import glob
import io
import json
import logging
import tarfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.packaged_modules.webdataset.webdataset import IMAGE_EXTENSIONS, WebDataset
from datasets.table import InMemoryTable
from huggingface_hub import HfFileSystem

from .columns import normalise_columns

logger = logging.getLogger(__name__)

MEASURE_ROWS = 10_000
"""Training images a measure over the training set reads when it is streamed (latent diffusion's latent scale, the
VAE's latent mixture): whole shards in a seeded order (`StreamedImages.sample`) - such measures settle long before a
large set is all seen, as Stable Diffusion's 0.18215 was measured on a batch."""
SHARD_FORMATS = ("parquet", "tar")
SHARD_PATTERNS = ("{split}-*.{format}", "{split}/*.{format}", "*/{split}-*.{format}", "*/{split}/*.{format}")
"""Where a split's shards are: `data/train-00000-of-00004.parquet` (push_to_hub), `train/*.parquet`,
`train-000000.tar` (webdataset), ..."""


class DataStreamError(Exception):
    """The stream could not deliver a batch: the Trainer checkpoints and ends the run with how to resume."""


class ShardUnavailable(DataStreamError, ConnectionError):
    """A shard could not be fetched, retries included (the Hub or the network is down)."""


class CorruptShard(DataStreamError, ValueError):
    """A shard is not a readable parquet or tar file."""


class CorruptSample(DataStreamError, ValueError):
    """An image inside a shard does not decode."""


def one_line(error: BaseException) -> str:
    """The error's own message - also when a DataLoader worker re-raised it inside the worker's traceback."""
    last = str(error).strip().splitlines()[-1]
    prefix = f"{type(error).__module__}.{type(error).__name__}: "
    return last.removeprefix(prefix)


def find_shards(source: str, split: str) -> tuple[list[str], HfFileSystem | None]:
    """The shards of `split` in a local folder or a Hub dataset repo (`owner/name`), sorted, all of one format;
    and the Hub filesystem they are read through (None for local files)."""
    local = Path(source).expanduser()
    if local.is_dir():
        listed = [str(p.relative_to(local)) for p in local.rglob("*") if p.is_file()]
        root, filesystem = f"{local}/", None
    else:
        filesystem = HfFileSystem()
        try:
            listed = filesystem.find(f"datasets/{source}")
        except Exception as error:  # a wrong id (404), or no Hub at all (a connection error)
            raise FileNotFoundError(
                f"--streaming: {source!r} is neither a local folder nor a readable Hub dataset repo ({error}): pass a "
                "folder of parquet or .tar shards or a Hub dataset id."
            ) from None
        root = f"datasets/{source}/"
        listed = [f[len(root):] for f in listed]
    for shard_format in SHARD_FORMATS:
        patterns = [p.format(split=split, format=shard_format) for p in SHARD_PATTERNS]
        files = sorted(root + f for f in listed if any(fnmatch.fnmatch(f, p) for p in patterns))
        if files:
            return files, filesystem
    raise ValueError(
        f"--streaming: {source!r} has no parquet or .tar shards of split {split!r} (looked for "
        f"{', '.join(p.format(split=split, format='parquet|tar') for p in SHARD_PATTERNS)}): write them with "
        "`Dataset.push_to_hub` or `Dataset.to_parquet` (or as webdataset tars), or drop --streaming."
    )


class StreamedImages:
    """The rows of a split of shards by global index, like a `datasets.Dataset` (`len`, `features`,
    `dataset[indices]`, `with_transform`), loading each shard when a row of it is asked for."""

    def __init__(
        self, source: str, split: str = "train", max_shards: int = 2, retries: int = 3, skip_bad_samples: bool = False
    ) -> None:
        self.source, self.split, self.max_shards = source, split, max_shards
        self.retries, self.skip_bad_samples = retries, skip_bad_samples
        self.files, self.filesystem = find_shards(source, split)
        self.is_tar = self.files[0].endswith(".tar")
        self.shard_sizes, features = self._tar_layout() if self.is_tar else self._parquet_layout()
        self.features = normalise_columns(datasets.Dataset.from_dict({k: [] for k in features}, features), source).features
        self.starts = np.cumsum([0, *self.shard_sizes])
        self.transform: Callable[[dict], dict] | None = None
        self.typical_shard_rows = int(np.median(self.shard_sizes))
        self._loaded: OrderedDict[int, datasets.Dataset] = OrderedDict()
        self._pending: dict[int, Future] = {}  # shards being read in the background (`prefetch`)
        self._prefetcher: ThreadPoolExecutor | None = None
        self._bad_rows: dict[int, list[int]] = {}  # shard -> its rows whose image does not decode

    def _parquet_layout(self) -> tuple[list[int], datasets.Features]:
        """Each shard's row count and the features, from the shards' footers only."""
        metadata = [self._fetch(index, pq.read_metadata, whole=False) for index in range(len(self.files))]
        return [m.num_rows for m in metadata], datasets.Features.from_arrow_schema(metadata[0].schema.to_arrow_schema())

    def _tar_layout(self) -> tuple[list[int], datasets.Features]:
        """Each tar's sample count - from a wids shard index beside the shards when there is one, else from its member
        headers (a read through each tar) - and the features."""
        sizes = self._indexed_tar_sizes() or [
            self._fetch(index, lambda file: len({_sample_key(name) for name in tarfile.open(fileobj=file).getnames()}))
            for index in range(len(self.files))
        ]
        return sizes, self._fetch(0, lambda file: _tar_table(tarfile.open(fileobj=file), self.files[0], limit=1)[1])

    def _indexed_tar_sizes(self) -> list[int] | None:
        """The tars' sample counts from a shard index - webdataset's wids JSON (`widsindex create`): {"shardlist":
        [{"url": "train-000000.tar", "nsamples": 1000}, ...]} - in a folder of the shards, if one lists them all."""
        folders = sorted({file.rsplit("/", 1)[0] for file in self.files})
        opener = open if self.filesystem is None else self.filesystem.open
        for folder in folders:
            listed = glob.glob(f"{folder}/*.json") if self.filesystem is None else self.filesystem.glob(f"{folder}/*.json")
            for candidate in sorted(listed):
                try:
                    with opener(candidate, "r") as file:
                        entries = json.load(file).get("shardlist", [])
                    counts = {entry["url"].rsplit("/", 1)[-1]: int(entry["nsamples"]) for entry in entries}
                except (ValueError, KeyError, TypeError, AttributeError):  # another JSON file, not an index
                    continue
                names = [file.rsplit("/", 1)[-1] for file in self.files]
                if all(name in counts for name in names):
                    return [counts[name] for name in names]
        return None

    def _fetch(self, index: int, read: Callable[[io.IOBase], object], whole: bool = True) -> object:
        """`read(file)` of shard `index`: a Hub shard `whole` (one download, then parsed) or through ranged reads (a
        parquet footer), retried with exponential backoff, then `ShardUnavailable`; a parse error is a `CorruptShard`."""
        for attempt in range(self.retries + 1):
            try:
                if self.filesystem is None:
                    with open(self.files[index], "rb") as file:
                        return read(file)
                with self.filesystem.open(self.files[index], "rb", block_size=0 if whole else None) as remote:
                    return read(io.BytesIO(remote.read()) if whole else remote)
            except DataStreamError:  # a tar sample without an image: already the error to show
                raise
            except (pa.ArrowException, tarfile.TarError, EOFError) as error:
                raise CorruptShard(
                    f"shard {self.files[index]} is not a readable {'tar' if self.is_tar else 'parquet'} file ({error}): "
                    "replace or remove it"
                ) from None
            except Exception as error:  # the HTTP client's connection and 5xx errors
                if self.filesystem is None:
                    raise
                if attempt == self.retries:
                    raise ShardUnavailable(
                        f"could not read shard {self.files[index]} after {self.retries + 1} "
                        f"{'try' if self.retries == 0 else 'tries'} ({error})"
                    ) from None
                delay = 2**attempt
                logger.warning("reading shard %s failed (%s); retrying in %d s", self.files[index], error, delay)
                self.filesystem.invalidate_cache()
                time.sleep(delay)

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def format(self) -> dict:
        """As `datasets.Dataset.format` says it, for the Trainer's per-sample generators (`SeededRows`)."""
        if self.transform is None:
            return {"type": None, "format_kwargs": {}}
        return {"type": "custom", "format_kwargs": {"transform": self.transform}}

    def with_transform(self, transform: Callable[[dict], dict]) -> StreamedImages:
        view = object.__new__(StreamedImages)  # not copy.copy, which goes through __getstate__
        view.__dict__.update(self.__dict__, transform=transform)  # the same shards held and on their way
        return view

    def with_format(self, type: None = None) -> StreamedImages:
        return self.with_transform(None)

    def __getstate__(self) -> dict:
        """For DataLoader workers: each starts with no thread and no shard on its way (it prefetches its own)."""
        return self.__dict__ | {"_pending": {}, "_prefetcher": None}

    def prefetch(self, row: int) -> None:
        """Start reading the shard of global `row` in a background thread, unless it is held or on its way, so its
        download overlaps training. Memory: `max_shards` held plus this one."""
        index = int(np.searchsorted(self.starts, row, side="right") - 1)
        if index in self._loaded or index in self._pending:
            return
        if self._prefetcher is None:
            self._prefetcher = ThreadPoolExecutor(1, thread_name_prefix="hfgen-shard-prefetch")
        self._pending[index] = self._prefetcher.submit(self._read, index)

    def shard(self, index: int) -> datasets.Dataset:
        """Shard `index` as a Dataset in memory (with `skip_bad_samples`, its images checked); the least recently
        used one goes when more than `max_shards` are."""
        if index in self._loaded:
            self._loaded.move_to_end(index)
            return self._loaded[index]
        pending = self._pending.pop(index, None)
        shard = pending.result() if pending is not None else self._read(index)  # its errors raised here, in the stream
        if self.skip_bad_samples:  # each image decoded once more, here: only when asked for
            self._bad_rows[index] = self._undecodable_rows(index, shard)
        self._loaded[index] = shard
        while len(self._loaded) > self.max_shards:
            self._loaded.popitem(last=False)
        return shard

    def _read(self, index: int) -> datasets.Dataset:
        """Shard `index` with `load_image_dataset`'s columns: `image` (and `label` when it is a ClassLabel)."""
        if self.is_tar:
            columns, features = self._fetch(index, lambda file: _tar_table(tarfile.open(fileobj=file), self.files[index]))
            return datasets.Dataset.from_dict(columns, features=features)
        table = self._fetch(index, pq.read_table)
        return normalise_columns(datasets.Dataset(InMemoryTable(table)), self.source)  # features from the schema's metadata

    def _undecodable_rows(self, index: int, shard: datasets.Dataset, rows: Sequence[int] | None = None) -> list[int]:
        """The rows of shard `index` (`shard`, or its `rows` selected) whose image does not decode: a `CorruptSample`
        for the first, or with `skip_bad_samples` all of them, logged."""
        bad = []
        values = shard.cast_column("image", datasets.Image(decode=False))["image"]
        for row, value in zip(rows if rows is not None else range(len(shard)), values):
            try:
                datasets.Image().decode_example(value)
            except Exception as error:  # PIL's UnidentifiedImageError, truncated files, ...
                where = f"sample {row} (row {int(self.starts[index]) + row} of the split) of shard {self.files[index]}"
                if not self.skip_bad_samples:
                    raise CorruptSample(
                        f"{where} is not a readable image ({error}): replace it, or pass --skip_bad_samples"
                    ) from None
                bad.append(row)
                logger.warning("skipped %s: not a readable image (%s)", where, error)
        return bad

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
            part = self._read(index)
            parts.append(part.select(range(min(len(part), num_rows - total))))
            total += len(parts[-1])
        return datasets.concatenate_datasets(parts)

    def readable(self, indices: Sequence[int]) -> list[int]:
        """`indices` without the rows skipped as unreadable (`skip_bad_samples`), loading their shards."""
        if not self.skip_bad_samples:
            return list(indices)
        shards = np.searchsorted(self.starts, indices, side="right") - 1
        for shard in dict.fromkeys(shards.tolist()):
            self.shard(shard)
        return [i for i, s in zip(indices, shards.tolist()) if i - self.starts[s] not in self._bad_rows[s]]

    def rows(self, indices: Sequence[int]) -> dict[str, list]:
        """The rows at global `indices`, as one batch of columns, in the order asked."""
        indices = np.asarray(indices, dtype=np.int64)
        shards = np.searchsorted(self.starts, indices, side="right") - 1
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"Row index out of range for {len(self)} rows.")
        batch: dict[str, list] = {name: [None] * len(indices) for name in self.features}
        for shard in dict.fromkeys(shards.tolist()):  # in order of first use
            where = np.flatnonzero(shards == shard)
            rows = (indices[where] - self.starts[shard]).tolist()
            try:
                part = self.shard(shard)[rows]
            except DataStreamError:
                raise
            except Exception:  # an image that does not decode: find it and name it
                self._undecodable_rows(shard, self.shard(shard).select(rows), rows)
                raise
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


def _sample_key(name: str) -> str:
    """webdataset's sample key of a tar member: its path up to the first dot of the file name."""
    folder, _, file = name.rpartition("/")
    return f"{folder}/{file.split('.')[0]}"


def _tar_members(tar: tarfile.TarFile) -> Iterator[tuple[str, io.IOBase]]:
    for member in tar:
        if member.isfile():
            yield member.name, tar.extractfile(member)


def _tar_table(tar: tarfile.TarFile, name: str, limit: int | None = None) -> tuple[dict[str, list], datasets.Features]:
    """A webdataset tar's samples as an `image` column (each sample's first image field), grouped and decoded by
    datasets' webdataset reader. Class indices (`.cls`) are plain integers there, not a ClassLabel: dropped, as
    `load_image_dataset` drops them from the same tars read whole."""
    images = []
    for example in WebDataset._get_pipeline_from_tar(name, _tar_members(tar)):
        image = next((v for k, v in example.items() if k.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS), None)
        if image is None:
            raise CorruptShard(f"sample {example['__key__']!r} of shard {name} has no image field: replace or remove the shard")
        images.append({"bytes": image, "path": None})
        if limit is not None and len(images) == limit:
            break
    return {"image": images}, datasets.Features({"image": datasets.Image()})
