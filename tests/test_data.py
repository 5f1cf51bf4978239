"""Data sources and transforms: every source gives an `image` column (and `label`), errors name the fix."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import datasets
import huggingface_hub
import numpy as np
import pytest
import torch
from PIL import Image

from hfgen.data import describe_images, image_transform, images_to_tensor, load_image_dataset
from hfgen.data.builtin import DIGITS_TEST_SIZE, FASHION_MNIST_DIRS, FASHION_MNIST_FILES, load_fashion_mnist
from hfgen.data.columns import normalise_columns


def test_digits_split_is_fixed_and_grey_levels_invertible():
    train, test = load_image_dataset("digits", "train"), load_image_dataset("digits", "test")
    assert (len(train), len(test)) == (1797 - DIGITS_TEST_SIZE, DIGITS_TEST_SIZE)
    assert train.features["label"].num_classes == 10
    assert load_image_dataset("digits", "test")["label"] == test["label"]  # same split every time
    pixels = np.stack([np.asarray(im) for im in test["image"]])
    levels = pixels / 255.0 * 16
    assert np.abs(levels - np.rint(levels)).max() < 0.05  # every pixel is one of the 17 sklearn grey levels
    info = describe_images(train, "digits")
    assert (info.resolution, info.channels, info.num_classes, info.grey_levels) == (8, 1, 10, 17)


def test_transform_is_lazy_and_in_range():
    train = load_image_dataset("digits", "train")
    transformed = train.with_transform(image_transform(16, 3))
    batch = transformed[[0, 1, 2]]
    assert batch["pixel_values"].shape == (3, 3, 16, 16)
    assert batch["pixel_values"].min() >= -1 and batch["pixel_values"].max() <= 1
    assert batch["labels"].tolist() == train["label"][:3]
    assert train.format["type"] is None  # the source dataset was not materialised or changed


def test_images_to_tensor_exact_at_native_size():
    image = Image.fromarray(np.array([[0, 255], [128, 64]], dtype=np.uint8))
    tensor = images_to_tensor([image], 2, 1)
    assert torch.allclose(tensor[0, 0], torch.tensor([[0, 255], [128, 64]]) / 127.5 - 1)


def _write_idx(path, array: np.ndarray) -> None:
    """One gzipped IDX file: magic (0, 0, uint8 type 0x08, ndim), big-endian dims, raw bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_reader_on_files_the_test_writes(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for split, (images_file, labels_file) in FASHION_MNIST_FILES.items():
        images, labels = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5)
        _write_idx(tmp_path / images_file, images)
        _write_idx(tmp_path / labels_file, labels)
        written[split] = images, labels
    for split, (images, labels) in written.items():
        dataset = load_image_dataset("fashion_mnist", split, str(tmp_path))
        assert len(dataset) == 5 and dataset["label"] == labels.tolist()
        assert np.array_equal(np.stack([np.asarray(image) for image in dataset["image"]]), images)
        assert dataset.features["label"].names[9] == "Ankle boot"


@pytest.mark.skipif(not any(Path(d).is_dir() for d in FASHION_MNIST_DIRS), reason="Debian's dataset-fashion-mnist is not installed (`make test` installs it as root)")
def test_fashion_mnist_from_debian_files():
    test = load_image_dataset("fashion_mnist", "test")
    assert len(test) == 10_000 and test[0]["image"].size == (28, 28)
    assert test.features["label"].names[9] == "Ankle boot"


def test_offline_missing_fashion_mnist_fails_at_once(tmp_path, monkeypatch):
    """With HF_HUB_OFFLINE the missing local files are the answer: no Hub retries (~23 s before)."""
    monkeypatch.setattr("hfgen.data.builtin.FASHION_MNIST_DIRS", (str(tmp_path / "none"),))
    monkeypatch.setattr(huggingface_hub, "is_offline_mode", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("the Hub was tried while offline"))
    started = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_image_dataset("fashion_mnist", "test")
    assert time.perf_counter() - started < 5


def test_fashion_mnist_missing_files_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist.*--data_dir"):
        load_fashion_mnist("train", tmp_path)


def _write_images(folder, classes=("cat", "dog"), per_class=3):
    for name in classes:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((6, 6, 3), 40 * i, dtype=np.uint8)).save(folder / name / f"{i}.png")


def test_image_folder_with_class_subfolders(tmp_path):
    _write_images(tmp_path)
    dataset = load_image_dataset(str(tmp_path))
    assert len(dataset) == 6 and set(dataset.column_names) == {"image", "label"}
    assert describe_images(dataset, str(tmp_path)).num_classes == 2


def test_image_folder_with_split_folders_and_no_classes_has_no_labels(tmp_path):
    for split, count in (("train", 4), ("test", 2)):
        (tmp_path / split).mkdir()
        for i in range(count):
            Image.fromarray(np.full((6, 6), 40 * i, dtype=np.uint8)).save(tmp_path / split / f"{i}.png")
    for split, count in (("train", 4), ("test", 2)):
        dataset = load_image_dataset(str(tmp_path), split)
        assert len(dataset) == count and dataset.column_names == ["image"]
        assert describe_images(dataset, str(tmp_path)).num_classes is None


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: p / "absent", FileNotFoundError, "does not exist"),
        (lambda p: p, ValueError, "holds no images"),
    ],
)
def test_bad_folders(tmp_path, make, error, message):
    with pytest.raises(error, match=message):
        load_image_dataset(str(make(tmp_path)))


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="Unknown dataset 'mnist': use one of digits, fashion_mnist"):
        load_image_dataset("mnist")


def test_hub_style_columns_are_normalised():
    features = datasets.Features({"img": datasets.Image(), "fine_label": datasets.ClassLabel(names=["a", "b"]), "id": datasets.Value("int32")})
    image = Image.fromarray(np.zeros((4, 4), dtype=np.uint8))
    dataset = datasets.Dataset.from_dict({"img": [image], "fine_label": [1], "id": [7]}, features=features)
    normalised = normalise_columns(dataset, "owner/name")
    assert normalised.column_names == ["image", "label"] and normalised[0]["label"] == 1
    with pytest.raises(ValueError, match="no image column"):
        normalise_columns(dataset.remove_columns("img"), "owner/name")
