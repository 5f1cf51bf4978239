"""Sample-quality metrics against one real reference set, all in the feature space of one extractor.

FID and KID are torchmetrics' (the extractor is passed as their `feature` module; no hand-written matrix
square roots). torchmetrics has no precision/recall for generative models, so the k-NN version of
Kynkäänniemi et al. (2019) is written out here, with the classifier score and the nearest-training-
neighbour distance.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from .feature_extractor import FeatureExtractor, accuracy


class ExtractorFeatures(nn.Module):
    """Images in [0, 1] (a pipeline's `output_type="pt"`) -> (B, feature_size) features; the torchmetrics `feature`."""

    def __init__(self, extractor: FeatureExtractor) -> None:
        super().__init__()
        self.extractor = extractor.eval()
        self.num_features = extractor.config.feature_size  # torchmetrics reads it instead of probing with Inception's shape

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        config = self.extractor.config
        expected = (config.num_channels, config.image_size, config.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"Images of shape {tuple(images.shape)} do not fit the {config.dataset!r} feature extractor, which "
                f"takes (B, {', '.join(map(str, expected))}): evaluate against the dataset the model was trained on."
            )
        return self.extractor(images.float() * 2 - 1).features


def _pairwise_distances(a: torch.Tensor, b: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """(N, D), (M, D) -> (N, M) Euclidean distances, computed in row chunks to bound memory."""
    return torch.cat([torch.cdist(a[i : i + chunk], b) for i in range(0, len(a), chunk)])


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """(N, D) -> (N,): distance of each point to its k-th nearest neighbour in the same set (itself excluded)."""
    if not 0 < k < len(features):
        raise ValueError(f"nearest_k must be in [1, {len(features) - 1}] for {len(features)} samples, got {k}.")
    return _pairwise_distances(features, features).kthvalue(k + 1, dim=1).values  # k+1: the 0 to itself comes first


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of (N, D) real and (M, D) fake features.

    Each set's manifold is the union of balls reaching each point's k-th nearest neighbour. Precision: the
    share of fakes inside the real manifold (quality). Recall: the share of reals inside the fake manifold
    (coverage).
    """
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    distances = _pairwise_distances(real, fake)  # (N, M)
    precision = (distances <= real_radii[:, None]).any(dim=0).float().mean().item()
    recall = (distances <= fake_radii[None, :]).any(dim=1).float().mean().item()
    return precision, recall


def nearest_neighbour_distance(samples: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W), (M, C, H, W) in [0, 1] -> (N,): RMS pixel distance of each sample to its nearest training image.

    A model that copies its training set scores near 0; held-out real images show the honest value.
    """
    flat_train = train.flatten(1).float()
    distances = _pairwise_distances(samples.flatten(1).float(), flat_train)
    return distances.min(dim=1).values / math.sqrt(flat_train.shape[1])


def inception_fid(real: torch.Tensor, fake: torch.Tensor, weights: str, batch_size: int = 100) -> float:
    """The standard FID in Inception-v3 pool features (torch-fidelity's port), weights read from a local file.

    `real`, `fake`: (N, C, H, W) in [0, 1]; grey images are repeated to RGB, torch-fidelity resizes to 299x299.
    """
    if not Path(weights).is_file():
        raise FileNotFoundError(f"Inception weights {weights!r} not found: pass the path of pt_inception-2015-12-05 weights.")
    try:
        fid = FrechetInceptionDistance(
            feature=2048, normalize=True, feature_extractor_weights_path=weights, sync_on_compute=False
        )
    except ModuleNotFoundError:
        raise ValueError("The Inception FID needs torch-fidelity: `pip install torch-fidelity`, or drop --inception_weights.") from None
    for images, is_real in ((real, True), (fake, False)):
        for chunk in images.split(batch_size):
            fid.update(chunk.expand(-1, 3, -1, -1) if chunk.shape[1] == 1 else chunk, real=is_real)
    return fid.compute().item()


class GenerativeMetrics:
    """Judges image sets against one real reference set (the train split), whose features are computed once.

    Args:
        extractor: the classifier whose penultimate features all metrics use.
        reference: (N, C, H, W) real images in [0, 1].
        kid_subset_size: KID subset size; default min(1000, samples, references); larger than either is an error.
        kid_subsets: KID subsets averaged.
        nearest_k: k of the precision/recall manifolds.
        seed: seeds KID's subsets and the precision/recall subsample, so a metric is a function of its inputs.
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        reference: torch.Tensor,
        kid_subset_size: int | None = None,
        kid_subsets: int = 100,
        nearest_k: int = 3,
        seed: int = 0,
        batch_size: int = 500,
    ) -> None:
        if kid_subset_size is not None and kid_subset_size <= 0:
            raise ValueError(f"kid_subset_size must be a positive number of samples, got {kid_subset_size}.")
        self.extractor, self.reference = extractor, reference
        self.features = ExtractorFeatures(extractor)
        self.kid_subset_size, self.nearest_k, self.seed, self.batch_size = kid_subset_size, nearest_k, seed, batch_size
        # sync_on_compute=False: every process holds all the images (gathered before), so no cross-process reduction.
        self.fid = FrechetInceptionDistance(feature=self.features, reset_real_features=False, sync_on_compute=False)
        with warnings.catch_warnings():  # "KID keeps every feature in memory": by design, for exact subsets
            warnings.filterwarnings("ignore", message=".*will save all extracted features")
            self.kid = KernelInceptionDistance(
                feature=self.features, subsets=kid_subsets, subset_size=1000, reset_real_features=False,
                sync_on_compute=False,
            )
        for start in range(0, len(reference), batch_size):
            self.fid.update(reference[start : start + batch_size], real=True)
            self.kid.update(reference[start : start + batch_size], real=True)
        self.reference_features = self._features(reference)

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.features(images[i : i + self.batch_size]) for i in range(0, len(images), self.batch_size)])

    def _kid_subset_size(self, num_samples: int) -> int:
        largest = min(num_samples, len(self.reference))
        if self.kid_subset_size is None:
            return min(1000, largest)
        if self.kid_subset_size > largest:
            raise ValueError(
                f"kid_subset_size {self.kid_subset_size} is larger than the {num_samples} samples / "
                f"{len(self.reference)} reference images: pass --kid_subset_size {largest} or fewer, or more samples."
            )
        return self.kid_subset_size

    def __call__(self, images: torch.Tensor, class_labels: torch.Tensor | None = None) -> dict[str, float]:
        """Metrics of `images` (N, C, H, W) in [0, 1]; `class_labels` (N,) adds the classifier score."""
        if len(images) < 2:
            raise ValueError(f"Metrics need at least 2 images, got {len(images)}: raise --num_samples.")
        # torchmetrics reads subset_size only in compute(): one KID (reference features kept) serves any sample count.
        self.kid.subset_size = self._kid_subset_size(len(images))
        self.fid.reset()
        self.kid.reset()
        for start in range(0, len(images), self.batch_size):
            self.fid.update(images[start : start + self.batch_size], real=False)
            self.kid.update(images[start : start + self.batch_size], real=False)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)  # KID draws its subsets from the global RNG
            kid_mean, kid_std = self.kid.compute()
            fid = self.fid.compute()
        fake = self._features(images)
        # Equal-sized sets, as the k-NN radii depend on the set size.
        size = min(len(fake), len(self.reference_features))
        generator = torch.Generator().manual_seed(self.seed)
        real = self.reference_features[torch.randperm(len(self.reference_features), generator=generator)[:size]]
        precision, recall = precision_recall(real, fake[torch.randperm(len(fake), generator=generator)[:size]], self.nearest_k)
        metrics = {
            "fid": fid.item(),
            "kid": kid_mean.item(),
            "kid_std": kid_std.item(),
            "precision": precision,
            "recall": recall,
            "nn_distance": nearest_neighbour_distance(images, self.reference).mean().item(),
        }
        if class_labels is not None:
            metrics["classifier_score"] = accuracy(self.extractor, images.float() * 2 - 1, class_labels)
        return metrics
