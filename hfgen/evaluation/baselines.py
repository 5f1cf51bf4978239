"""Reference rows, computed by the same metric code as the models.

- real test images vs train: the floor a perfect model would reach;
- Gaussian noise: the ceiling, what an untrained sampler emits;
- scikit-learn's kernel-density sampler: the trivial baseline every model must beat.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from ..data import describe_images, images_to_tensor, load_image_dataset
from ..images import postprocess

KDE_MAX_FIT_IMAGES = 2000
"""The grid search scores every fold against every other: past a few thousand images it is slow, not better."""


def real_images(dataset: str, split: str, data_dir: str | None = None) -> torch.Tensor:
    """One split as (N, C, H, W) in [0, 1], the range of pipelines' `output_type="pt"`."""
    data = load_image_dataset(dataset, split, data_dir)
    info = describe_images(data, dataset)
    return images_to_tensor(data["image"], info.resolution, info.channels) / 2 + 0.5


def noise_images(num: int, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    """(num, *shape): standard Gaussian noise in the models' [-1, 1] space, clipped to images as pipelines do."""
    noise = torch.randn((num, *shape), generator=torch.Generator().manual_seed(seed))
    return postprocess(noise, "pt")


def kde_images(train: torch.Tensor, num: int, seed: int = 0, components: int = 15) -> torch.Tensor:
    """scikit-learn's "kernel density estimation" digits example as a sampler: (N, C, H, W) in [0, 1] -> (num, C, H, W).

    PCA to 15 components, a Gaussian KDE whose bandwidth a 5-fold grid search picks from the example's
    `logspace(-1, 1, 20)` (rescaled from its 0..16 pixel values to our 0..1), sample, inverse-transform.
    """
    rng = np.random.default_rng(seed)
    data = train.flatten(1).numpy().astype(np.float64)  # (N, D)
    if len(data) > KDE_MAX_FIT_IMAGES:
        data = data[rng.choice(len(data), KDE_MAX_FIT_IMAGES, replace=False)]
    pca = PCA(n_components=components, whiten=False, random_state=seed)
    codes = pca.fit_transform(data)  # (N, components)
    grid = GridSearchCV(KernelDensity(), {"bandwidth": np.logspace(-1, 1, 20) / 16})
    grid.fit(codes)
    samples = pca.inverse_transform(grid.best_estimator_.sample(num, random_state=seed))  # (num, D)
    return torch.from_numpy(samples).float().reshape(num, *train.shape[1:]).clamp(0, 1)


def reference_samples(train: torch.Tensor, test: torch.Tensor, num: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """The reference rows' image sets, by row name; the test split is used whole."""
    return {
        "real test images": test,
        "scikit-learn KDE": kde_images(train, num, seed),
        "Gaussian noise": noise_images(num, tuple(train.shape[1:]), seed),
    }
