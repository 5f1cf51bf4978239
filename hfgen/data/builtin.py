"""The datasets that need no download: scikit-learn's digits and sample photos, and Debian's Fashion-MNIST files."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import datasets
import numpy as np

DIGITS_TEST_SIZE = 300
"""Held-out digits: a stratified 300-image test split (`train_test_split(random_state=0)`), 1,497 for training."""

DIGITS_GREY_LEVELS = 17
PHOTOS = {"photos32": 32, "photos64": 64}
"""RGB crops of scikit-learn's two sample photos at a fixed side, so the evaluator's judge and test images have
the models' size (it judges at the data's own resolution)."""
PHOTOS_CROPS = {"train": 128, "test": 32}
"""Crops per photo and split: 256 training images, 64 test images, two classes."""
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


def _image_dataset(images: np.ndarray, labels: np.ndarray, class_names: list[str]) -> datasets.Dataset:
    """(n, h, w[, 3]) uint8 + (n,) ints -> Dataset with `image` (Image) and `label` (ClassLabel) columns."""
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=class_names)})
    # The Image feature encodes {"bytes": png}; from a numpy array it writes lossless PNG.
    return datasets.Dataset.from_dict({"image": list(images), "label": labels.tolist()}, features=features)


def load_digits(split: str) -> datasets.Dataset:
    """scikit-learn's 8x8 digits, grey levels 0..16 stored as round(v * 255 / 16) so they are exactly invertible."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    pixels = np.rint(bunch.images * 255.0 / 16.0).astype(np.uint8)  # (1797, 8, 8)
    train_idx, test_idx = train_test_split(
        np.arange(len(pixels)), test_size=DIGITS_TEST_SIZE, random_state=0, stratify=bunch.target
    )
    idx = {"train": train_idx, "test": test_idx}[split]
    return _image_dataset(pixels[idx], bunch.target[idx], [str(d) for d in range(10)])


def load_photos(name: str, split: str) -> datasets.Dataset:
    """RGB squares of scikit-learn's sample photos (china.jpg, flower.jpg: 427x640), one class per photo: random
    crops of a side between 1/3 and all of the photo's height, resized to the size `name` says. The crops are a
    fixed function of the split (seed 0 train, 1 test); both splits come from the same two photos."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    rng = np.random.default_rng(("train", "test").index(split))
    side, images, labels = PHOTOS[name], [], []
    for label, photo in enumerate(bunch.images):  # (427, 640, 3) uint8
        height, width = photo.shape[:2]
        for _ in range(PHOTOS_CROPS[split]):
            crop = int(rng.integers(height // 3, height + 1))
            top, left = int(rng.integers(height - crop + 1)), int(rng.integers(width - crop + 1))
            square = Image.fromarray(photo[top : top + crop, left : left + crop])
            images.append(np.asarray(square.resize((side, side), Image.Resampling.BICUBIC)))
            labels.append(label)
    names = [Path(f).stem for f in bunch.filenames]
    return _image_dataset(np.stack(images), np.asarray(labels), names)


def _read_idx(path: Path) -> np.ndarray:
    """Read one gzipped IDX file (the MNIST format: magic, dims, then raw uint8)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find_fashion_mnist(data_dir: str | os.PathLike | None) -> Path:
    """The folder holding the four gzipped IDX files, or a FileNotFoundError that says how to get them."""
    candidates = [Path(data_dir)] if data_dir else [Path(d) for d in FASHION_MNIST_DIRS]
    needed = [name for pair in FASHION_MNIST_FILES.values() for name in pair]
    for folder in candidates:
        if all((folder / name).is_file() for name in needed):
            return folder
    where = f"--data_dir {data_dir}" if data_dir else " or ".join(FASHION_MNIST_DIRS)
    raise FileNotFoundError(
        f"Fashion-MNIST files not found in {where} (need {', '.join(needed)}): install them with "
        "`apt-get install dataset-fashion-mnist`, or pass --data_dir to a folder holding those four files."
    )


def load_fashion_mnist(split: str, data_dir: str | os.PathLike | None = None) -> datasets.Dataset:
    """Fashion-MNIST from local IDX files (Debian's package or --data_dir): 60,000 train / 10,000 test, 28x28."""
    folder = find_fashion_mnist(data_dir)
    images_file, labels_file = FASHION_MNIST_FILES[split]
    return _image_dataset(_read_idx(folder / images_file), _read_idx(folder / labels_file), FASHION_MNIST_CLASSES)
