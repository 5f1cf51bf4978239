"""Reference rows, computed by the same metric code as the models.

- real test images vs train: the floor a perfect model would reach, drawn as a model draws (a random class mix);
  a dataset without a test split (a folder of images) holds out a seeded sixth of its train split for it;
- Gaussian noise: the ceiling, what an untrained sampler emits;
- two trivial baselines every model must beat, with no deep learning: scikit-learn's kernel-density sampler in
  PCA space (whose samples need a clamp to [0, 1]) and SMOTE (convex combinations of neighbouring training
  images, always in [0, 1]: no clamp).
"""

from __future__ import annotations

import datasets
import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity, NearestNeighbors

from ..data import images_to_tensor
from ..images import postprocess
from .feature_extractor import class_labels
from .splits import EvaluationData, evaluation_data

KDE_MAX_FIT_IMAGES = 2000
"""The grid search scores every fold against every other: past a few thousand images it is slow, not better."""
HELD_OUT_SHARE = 6
"""A dataset without a test split keeps one train image in this many (seeded) as its test split."""


def images_of(rows: datasets.Dataset, data: EvaluationData) -> torch.Tensor:
    """Rows of a loaded split as (N, C, H, W) in [0, 1], the range of pipelines' `output_type="pt"`."""
    info = data.image_info(rows)
    return images_to_tensor(rows["image"], info.resolution, info.channels) / 2 + 0.5


def real_images(dataset: str | EvaluationData, split: str, data_dir: str | None = None) -> torch.Tensor:
    """One split as (N, C, H, W) in [0, 1]."""
    data = evaluation_data(dataset, data_dir)
    return images_of(data.load(split), data)


def evaluation_splits(
    dataset: str | EvaluationData, data_dir: str | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, int]:
    """The reference (train) and held-out (test) images, (N, C, H, W) in [0, 1], the test labels (None without
    usable labels) and the grey levels every bits/dim is counted on.

    Without a test split, one train image in HELD_OUT_SHARE (seeded) is held out: the floor then stays images the
    reference set does not hold, though the model may have trained on them.
    """
    data = evaluation_data(dataset, data_dir)
    train, name = data.load("train"), data.dataset
    grey_levels = data.image_info(train).grey_levels
    if data.has_split("test"):
        test = data.load("test")
        return images_of(train, data), images_of(test, data), class_labels(test, name), grey_levels
    held_out = torch.zeros(len(train), dtype=torch.bool)
    held_out[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: len(train) // HELD_OUT_SHARE]] = True
    test = train.select(torch.nonzero(held_out).flatten().tolist())
    train = train.select(torch.nonzero(~held_out).flatten().tolist())
    return images_of(train, data), images_of(test, data), class_labels(test, name), grey_levels


def noise_images(num: int, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    """(num, *shape): standard Gaussian noise in the models' [-1, 1] space, clipped to images as pipelines do."""
    noise = torch.randn((num, *shape), generator=torch.Generator().manual_seed(seed))
    return postprocess(noise, "pt")


def held_out_images(test: torch.Tensor, labels: torch.Tensor | None, num: int, seed: int = 0) -> torch.Tensor:
    """`num` of the test images (N, C, H, W), distinct, with class counts drawn at random as a model's would be
    (without labels: a random `num` of them).

    The test split is stratified (exact class counts): judged whole it would beat any sampler by its class mix
    alone, an advantage no model row has. Here the counts are multinomial (iid draws of a class from the split's
    own class frequencies, redrawn while a class runs out of images), then images are picked within each class.
    """
    if not 0 < num <= len(test):
        raise ValueError(f"num must be in [1, {len(test)}] (the test images), got {num}.")
    generator = torch.Generator().manual_seed(seed)
    if labels is None:
        return test[torch.randperm(len(test), generator=generator)[:num]]
    classes, available = labels.unique(return_counts=True)
    while True:
        draws = classes[torch.multinomial(available.double(), num, replacement=True, generator=generator)]
        counts = torch.stack([(draws == c).sum() for c in classes])
        if (counts <= available).all():
            break
    chosen = [
        torch.nonzero(labels == c).flatten()[torch.randperm(int(a), generator=generator)[: int(k)]]
        for c, a, k in zip(classes, available, counts)
    ]
    return test[torch.cat(chosen)[torch.randperm(num, generator=generator)]]


def smote_images(train: torch.Tensor, num: int, seed: int = 0, neighbours: int = 5) -> torch.Tensor:
    """SMOTE (Chawla et al. 2002) as a sampler: (N, C, H, W) in [0, 1] -> (num, C, H, W).

    A random training image moved a uniform fraction of the way towards one of its `neighbours` nearest training
    images (pixel space): convex combinations stay in [0, 1], so unlike the KDE it needs no clamp. Its NN dist.
    shows what it is - a near copy of the training set.
    """
    rng = np.random.default_rng(seed)
    data = train.flatten(1).numpy()  # (N, D)
    _, indices = NearestNeighbors(n_neighbors=neighbours + 1).fit(data).kneighbors(data)  # column 0: itself
    start = rng.integers(len(data), size=num)
    end = indices[start, rng.integers(1, neighbours + 1, size=num)]
    weight = rng.random((num, 1), dtype=np.float32)
    samples = data[start] + weight * (data[end] - data[start])  # (num, D)
    return torch.from_numpy(samples).reshape(num, *train.shape[1:])


def kde_images(
    train: torch.Tensor, num: int, seed: int = 0, components: int = 15, clamp: bool = True
) -> torch.Tensor:
    """scikit-learn's "kernel density estimation" digits example as a sampler: (N, C, H, W) in [0, 1] -> (num, C, H, W).

    PCA to 15 components (fewer for fewer images or pixels, as PCA requires), a Gaussian KDE whose bandwidth a 5-fold grid search picks from the example's
    `logspace(-1, 1, 20)` (rescaled from its 0..16 pixel values to our 0..1), sample, inverse-transform. About a
    quarter of the pixels land outside [0, 1] (PCA ringing); `clamp=False` keeps them, to measure the clamp's share.
    """
    rng = np.random.default_rng(seed)
    data = train.flatten(1).numpy().astype(np.float64)  # (N, D)
    if len(data) > KDE_MAX_FIT_IMAGES:
        data = data[rng.choice(len(data), KDE_MAX_FIT_IMAGES, replace=False)]
    pca = PCA(n_components=min(components, *data.shape), whiten=False, random_state=seed)
    codes = pca.fit_transform(data)  # (N, components)
    grid = GridSearchCV(KernelDensity(), {"bandwidth": np.logspace(-1, 1, 20) / 16})
    grid.fit(codes)
    samples = pca.inverse_transform(grid.best_estimator_.sample(num, random_state=seed))  # (num, D)
    samples = torch.from_numpy(samples).float().reshape(num, *train.shape[1:])
    return samples.clamp(0, 1) if clamp else samples


def floor_size(test_size: int) -> int:
    """Images in the floor row: two thirds of the test split, so random class counts rarely exhaust a class."""
    return test_size * 2 // 3


def reference_samples(
    train: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor | None, num: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """The reference rows' image sets, by row name."""
    return {
        "real test images": held_out_images(test, test_labels, floor_size(len(test)), seed),
        "scikit-learn KDE": kde_images(train, num, seed),
        "SMOTE": smote_images(train, num, seed),
        "Gaussian noise": noise_images(num, tuple(train.shape[1:]), seed),
    }
