"""One entry point for image data: built-in names, a local image folder, or a Hub dataset id."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import datasets
import huggingface_hub

from .builtin import DIGITS_GREY_LEVELS, PHOTOS, load_digits, load_fashion_mnist, load_photos
from .columns import normalise_columns
from .shards import find_shards

DATASET_NAMES = ("digits", "fashion_mnist", *PHOTOS)
FASHION_MNIST_HUB_ID = "zalando-datasets/fashion_mnist"
SHARD_SUFFIXES = {".parquet", ".tar"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class ImageDataInfo:
    """What a model needs to know about its data to size itself."""

    resolution: int
    channels: int
    num_classes: int | None
    grey_levels: int
    """Distinct intensities per channel: 17 for digits, 256 for 8-bit images (discrete likelihoods use it)."""


def load_image_dataset(
    name: str, split: str = "train", data_dir: str | os.PathLike | None = None
) -> datasets.Dataset:
    """Load `name` as a Dataset with an `image` column and, when known, a `label` ClassLabel column.

    `name` is `digits` (the built-in default), `fashion_mnist`, `photos32` / `photos64` (RGB), a local folder of images (datasets'
    `imagefolder`, class sub-folders become labels) or a Hub dataset id such as `owner/name`.
    """
    if split not in ("train", "test"):
        raise ValueError(f"Unknown split {split!r}: use 'train' or 'test'.")
    if name == "digits":
        return load_digits(split)
    if name == "fashion_mnist":
        return _fashion_mnist(split, data_dir)
    if name in PHOTOS:
        return load_photos(name, split)
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        return normalise_columns(_image_folder(path, split), name)
    if "/" in name:
        return normalise_columns(datasets.load_dataset(name, split=split), name)
    raise ValueError(
        f"Unknown dataset {name!r}: use one of {', '.join(DATASET_NAMES)}, a folder of images, "
        "or a Hub dataset id such as 'owner/name'."
    )


def _fashion_mnist(split: str, data_dir: str | os.PathLike | None) -> datasets.Dataset:
    """Local IDX files first (Debian's package or --data_dir, no network), then the Hub copy."""
    try:
        return load_fashion_mnist(split, data_dir)
    except FileNotFoundError as missing:
        if data_dir is not None or huggingface_hub.is_offline_mode():  # HF_HUB_OFFLINE: no Hub, no ~23 s of retries
            raise
        try:
            return normalise_columns(datasets.load_dataset(FASHION_MNIST_HUB_ID, split=split), "fashion_mnist")
        except Exception:  # offline or Hub unreachable: the local-files error says how to fix it
            raise missing from None


def _image_folder(path: Path, split: str) -> datasets.Dataset:
    if not path.is_dir():
        raise FileNotFoundError(f"Dataset folder {str(path)!r} does not exist: pass an existing folder of images.")
    if is_shard_folder(path):
        return _shard_folder(path, split)
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*") if p.is_file()):
        raise ValueError(
            f"Dataset folder {str(path)!r} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}) and no parquet or .tar "
            "shards: add image files, optionally in one sub-folder per class."
        )
    splits = datasets.load_dataset("imagefolder", data_dir=str(path))
    if split not in splits:
        raise ValueError(
            f"Dataset folder {str(path)!r} has no {split!r} split (it has {', '.join(splits)}): "
            f"add a '{split}/' sub-folder or use --split train."
        )
    dataset = splits[split]
    label = dataset.features.get("label")
    if isinstance(label, datasets.ClassLabel) and set(label.names) <= set(splits):
        # datasets names classes after the split folders when train/ and test/ hold the images directly: no classes
        dataset = dataset.remove_columns("label")
    return dataset


def is_shard_folder(path: Path) -> bool:
    """A folder of parquet or webdataset .tar shards and no image files: read by datasets' builder of that format."""
    files = [p.suffix.lower() for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
    return any(suffix in SHARD_SUFFIXES for suffix in files) and not any(suffix in IMAGE_SUFFIXES for suffix in files)


def _shard_folder(path: Path, split: str) -> datasets.Dataset:
    """A folder of parquet or webdataset .tar shards (`hfgen.data.shards`' layouts), read whole by datasets' own
    builder - the map-style twin of `--streaming` over the same folder."""
    files, _ = find_shards(str(path), split)
    builder = "webdataset" if files[0].endswith(".tar") else "parquet"
    return normalise_columns(datasets.load_dataset(builder, data_files=files, split="train"), str(path))


def describe_images(
    dataset: datasets.Dataset, name: str, resolution: int | None = None, channels: int | None = None
) -> ImageDataInfo:
    """Size and classes of `dataset`; resolution/channels default to those of its first image."""
    if len(dataset) == 0:
        raise ValueError(f"Dataset {name!r} is empty: add images or choose another split.")
    first = dataset[0]["image"]
    label = dataset.features.get("label")
    return ImageDataInfo(
        resolution=resolution or max(first.size),
        channels=channels or (1 if first.mode in ("L", "1", "I", "I;16", "F") else 3),
        num_classes=label.num_classes if isinstance(label, datasets.ClassLabel) else None,
        grey_levels=DIGITS_GREY_LEVELS if name == "digits" else 256,
    )
