"""Where evaluation reads a dataset: the one place the evaluator, the baselines and the judges load a split - whole
(`hfgen.data.load_image_dataset`), or with streaming a bounded, seeded sample of its shards (`StreamedImages.sample`:
whole shards in a seeded order, nothing of the dataset kept on disk)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from ..arguments import require_streamable
from ..data import DATASET_NAMES, ImageDataInfo, describe_images, load_image_dataset
from ..data.shards import StreamedImages, find_shards
from ..data.sources import is_shard_folder

STREAMING_IMAGES = 10_000
"""Images read of each split with streaming by default: FID-10k's reference size, and that of the test splits of
MNIST and CIFAR-10 - enough that a reference set's own sampling error is small beside a model's, while the
evaluator's float copy stays modest (10,000 64x64 RGB images: 0.5 GB)."""


@dataclass
class EvaluationData:
    r"""
    A dataset as evaluation reads it: every split the evaluator, the baselines and the judges use comes from `load`.

    Args:
        dataset (`str`, *optional*, defaults to `"digits"`):
            A built-in name, a folder of images or a Hub dataset id; with streaming, a folder or Hub dataset repo of
            shards, parquet as `Dataset.push_to_hub` writes them (`data/train-00000-of-00004.parquet`, ...) or .tar.
        data_dir (`str`, *optional*):
            The folder of the Fashion-MNIST IDX files (read whole only).
        streaming_images (`int`, *optional*):
            None reads each split whole; a number streams at most that many rows of each split.
        seed (`int`, *optional*, defaults to 0):
            Seeds the streamed sample's shard order (unused when read whole).
        resolution (`int`, *optional*), channels (`int`, *optional*):
            The size every image is read at - the model's `--resolution` and `--channels`, so a model trained on
            resized images is judged against the same sizes (the shorter side resized, the center square). None: the
            first image's.

    Example:
    ```py
    >>> from hfgen.evaluation.splits import EvaluationData
    >>> EvaluationData("digits-shards", streaming_images=200).load("test")  # 200 rows of whole test shards
    Dataset({
        features: ['image', 'label'],
        num_rows: 200
    })
    ```
    """

    dataset: str = "digits"
    data_dir: str | None = None
    streaming_images: int | None = None
    seed: int = 0
    resolution: int | None = None
    channels: int | None = None
    # each split once per instance: the judge, its default and the reference set read the same rows, and a streamed
    # split is not downloaded again for each (encoded images, smaller than the evaluator's float copy of them)
    _loaded: dict[str, datasets.Dataset] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.streaming_images is not None:
            require_streamable(self.dataset)
            if not self.streaming_images > 0:
                raise ValueError(f"--streaming_images must be a positive integer, got {self.streaming_images}.")

    @property
    def streaming(self) -> bool:
        return self.streaming_images is not None

    def load(self, split: str) -> datasets.Dataset:
        """`split` with an `image` column (and `label`), whole or, streaming, its seeded sample."""
        if split not in self._loaded:
            self._loaded[split] = (
                StreamedImages(self.dataset, split).sample(self.streaming_images, self.seed)
                if self.streaming
                else load_image_dataset(self.dataset, split, self.data_dir)
            )
        return self._loaded[split]

    def has_split(self, split: str) -> bool:
        """Whether the dataset has `split`: the built-ins have both; a folder needs a sub-folder of it, a Hub dataset
        its own, and streamed, shards of it."""
        if self.streaming or is_shard_folder(Path(self.dataset).expanduser()):
            try:
                find_shards(self.dataset, split)
            except ValueError:  # no shards of this split (an unreadable source raises FileNotFoundError, kept)
                return False
            return True
        if self.dataset in DATASET_NAMES:
            return True
        path = Path(self.dataset).expanduser()
        if path.exists():
            return split in datasets.get_dataset_split_names("imagefolder", data_dir=str(path))
        return split in datasets.get_dataset_split_names(self.dataset)

    def image_info(self, rows: datasets.Dataset) -> ImageDataInfo:
        """Size, channels and classes of `rows` as they are read: at `resolution` and `channels` where given."""
        return describe_images(rows, self.dataset, self.resolution, self.channels)

    @property
    def cache_name(self) -> str:
        """A file-name-safe key of the rows read: the dataset's name, plus the sample's size and seed when streaming
        and the size read at when given, so nothing trained on other rows (a cached judge) stands in for this one."""
        sample = f"-streamed{self.streaming_images}-sample{self.seed}" if self.streaming else ""
        size = "".join(f"-{value}{unit}" for value, unit in ((self.resolution, "px"), (self.channels, "ch")) if value)
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.dataset).strip("_") + sample + size

    def describe(self) -> dict[str, Any]:
        """How the data was read, for every result (`"data"` in metrics.json)."""
        return {
            "dataset": self.dataset, "streamed": self.streaming, "streaming_images": self.streaming_images,
            "resolution": self.resolution, "channels": self.channels,
        }


def evaluation_data(dataset: str | EvaluationData, data_dir: str | None = None) -> EvaluationData:
    """`dataset` as `EvaluationData`: a name or path is read whole (from `data_dir` for Fashion-MNIST's files)."""
    if isinstance(dataset, EvaluationData):
        if data_dir is not None:
            raise TypeError("data_dir goes into the EvaluationData, not beside it.")
        return dataset
    return EvaluationData(dataset, data_dir)
