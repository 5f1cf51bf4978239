"""Sample-quality metrics against one real reference set, all in the feature space of one judge (`judges.py`).

Every row of a table is measured the same way, whatever its number of images N:
- FID is FID∞ (Chong & Forsyth 2020, "Effectively Unbiased FID"): FID grows like FID∞ + c / n with the sample
  size n, so it is computed on random subsets of several sizes and the line in 1/n is extrapolated to 1/n = 0.
  The c / n term holds both the estimator's bias and the noise of a random class mix, so neither a larger N nor
  a stratified set (the test split has exact class counts) buys a lower number.
- KID (unbiased, Bińkowski et al. 2018) and precision/recall (Kynkäänniemi et al. 2019, whose k-NN radii do
  depend on n) are computed on subsets of one `subset_size` shared by every row.
- Error bars are delete-half jackknife standard errors (Shao & Wu 1989): the spread of each metric over random
  halves of the images (drawn without replacement, so no duplicate images) estimates the standard error of the
  metric on all N images. Precision/recall's value is the mean over those halves and its error bar their spread.

The arithmetic is torchmetrics' (`_compute_fid`, `poly_mmd`) on features computed once; no hand-written matrix
square roots. torchmetrics has no precision/recall for generative models, so the k-NN version is written out here,
with the classifier score and the nearest-training-neighbour distance.
"""

from __future__ import annotations

import math

import torch
from torchmetrics.image.fid import _compute_fid
from torchmetrics.image.kid import poly_mmd

from .feature_extractor import accuracy
from .judges import Judge, check_images

MIN_IMAGES = 16
"""The fewest images any row is judged on: the jackknife's halves need 8 each."""
FID_INFINITY_SIZES = 8
"""Subset sizes of the FID∞ line, evenly spaced in 1/n from n = N / 4 to n = N."""
KID_SUBSETS = 20
"""KID subsets averaged per estimate."""


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
    (coverage). Both depend on the set sizes: compare rows only at equal sizes.
    """
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    distances = _pairwise_distances(real, fake)  # (N, M)
    precision = (distances <= real_radii[:, None]).any(dim=0).float().mean().item()
    recall = (distances <= fake_radii[None, :]).any(dim=1).float().mean().item()
    return precision, recall


def _mean_and_covariance(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) -> (D,), (D, D) in float64, the statistics FID compares."""
    features = features.double()
    return features.mean(0), torch.cov(features.T)


def frechet_distance(fake: torch.Tensor, reference: tuple[torch.Tensor, torch.Tensor]) -> float:
    """FID of (N, D) fake features against the reference's (mean, covariance), torchmetrics' formula."""
    return _compute_fid(*_mean_and_covariance(fake), *reference).item()


def fid_infinity(
    fake: torch.Tensor, reference: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator, sizes: int = FID_INFINITY_SIZES
) -> float:
    """FID∞ of (N, D) fake features: FID on random subsets of `sizes` sizes from N / 4 to N (even in 1/n), the
    least-squares line FID = FID∞ + c / n, its value at 1/n = 0 (Chong & Forsyth 2020)."""
    count = len(fake)
    if count < 8:
        raise ValueError(f"FID∞ needs at least 8 images to fit its line, got {count}: raise --num_samples.")
    inverse = torch.linspace(1 / count, 4 / count, sizes, dtype=torch.float64)  # 1/n
    fids = torch.tensor(
        [frechet_distance(fake[torch.randperm(count, generator=generator)[: round(1 / x)]], reference) for x in inverse.tolist()],
        dtype=torch.float64,
    )
    design = torch.stack([torch.ones_like(inverse), inverse], dim=1)  # (sizes, 2): intercept, slope
    return torch.linalg.lstsq(design, fids[:, None]).solution[0, 0].item()


def fid_verdict(row: dict[str, float], reference: dict[str, float]) -> tuple[float, float, str]:
    """`row` against `reference` on FID∞: (difference, two combined errors, verdict). A difference counts only beyond
    the line 2 √(e₁² + e₂²) - "better" or "worse"; within it, "no difference"."""
    gap, line = row["fid"] - reference["fid"], 2 * math.hypot(row["fid_error"], reference["fid_error"])
    verdict = ("better" if gap < 0 else "worse") if abs(gap) > line else "no difference"
    return gap, line, verdict


def kernel_distance(fake: torch.Tensor, real: torch.Tensor, subset_size: int, generator: torch.Generator, subsets: int = KID_SUBSETS) -> float:
    """KID of (N, D) fake and (M, D) real features: the unbiased MMD² (torchmetrics' polynomial kernel) averaged
    over random subsets of `subset_size` of each."""
    values = [
        poly_mmd(
            real[torch.randperm(len(real), generator=generator)[:subset_size]].double(),
            fake[torch.randperm(len(fake), generator=generator)[:subset_size]].double(),
        )
        for _ in range(subsets)
    ]
    return torch.stack(values).mean().item()


def nearest_neighbour_distance(samples: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W), (M, C, H, W) in [0, 1] -> (N,): RMS pixel distance of each sample to its nearest training image.

    A model that copies its training set scores near 0; held-out real images show the honest value.
    """
    flat_train = train.flatten(1).float()
    distances = _pairwise_distances(samples.flatten(1).float(), flat_train)
    return distances.min(dim=1).values / math.sqrt(flat_train.shape[1])


class GenerativeMetrics:
    """Judges image sets against one real reference set (the train split), whose features are computed once.

    Args:
        judge: the network whose features all metrics use (`load_judge`).
        reference: (N, C, H, W) real images in [0, 1].
        subset_size: images per KID subset and per precision/recall manifold, the same for every set judged
            (precision/recall depend on it); default min(1000, half the smallest set judged, references).
        jackknife_rounds: random halves behind each error bar.
        nearest_k: k of the precision/recall manifolds.
        seed: seeds every random subset, so a metric is a function of its inputs.
    """

    def __init__(
        self,
        judge: Judge,
        reference: torch.Tensor,
        subset_size: int | None = None,
        jackknife_rounds: int = 20,
        nearest_k: int = 3,
        seed: int = 0,
        batch_size: int | None = None,
    ) -> None:
        check_images(reference, "reference")
        if jackknife_rounds < 2:
            raise ValueError(f"jackknife_rounds must be at least 2 for an error bar, got {jackknife_rounds}.")
        self.judge, self.reference = judge, reference
        self.subset_size, self.jackknife_rounds = subset_size, jackknife_rounds
        self.nearest_k, self.seed, self.batch_size = nearest_k, seed, batch_size or judge.batch_size
        self.reference_features = self._features(reference)  # (M, D)
        self.reference_statistics = _mean_and_covariance(self.reference_features)

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.judge(images[i : i + self.batch_size]) for i in range(0, len(images), self.batch_size)])

    def _subset_size(self, num_samples: int, requested: int | None) -> int:
        """Subsets must fit in a half of the images (the jackknife's) and in the reference set."""
        largest = min(num_samples // 2, len(self.reference))
        if requested is None:
            return min(1000, largest)
        if not self.nearest_k < requested <= largest:
            raise ValueError(
                f"subset_size {requested} does not fit half the {num_samples} samples (or the {len(self.reference)} "
                f"reference images): pass --subset_size between {self.nearest_k + 1} and {largest}, or more samples."
            )
        return requested

    def _sample_metrics(self, fake: torch.Tensor, subset_size: int, generator: torch.Generator) -> dict[str, float]:
        real = self.reference_features[torch.randperm(len(self.reference_features), generator=generator)[:subset_size]]
        precision, recall = precision_recall(
            real, fake[torch.randperm(len(fake), generator=generator)[:subset_size]], self.nearest_k
        )
        return {
            "fid": fid_infinity(fake, self.reference_statistics, generator),
            "kid": kernel_distance(fake, self.reference_features, subset_size, generator),
            "precision": precision,
            "recall": recall,
        }

    def __call__(
        self, images: torch.Tensor, class_labels: torch.Tensor | None = None, subset_size: int | None = None
    ) -> dict[str, float]:
        """Metrics of `images` (N, C, H, W) in [0, 1], each with its `<name>_error`; `class_labels` (N,) adds
        the classifier score when the judge is a classifier; `subset_size` overrides the one given at init. Also records n (`num_images`) and
        the `subset_size` used."""
        check_images(images)
        if len(images) < MIN_IMAGES:
            raise ValueError(
                f"Metrics need at least {MIN_IMAGES} images (halves of {MIN_IMAGES // 2} for the error bars), got {len(images)}: "
                "raise --num_samples."
            )
        subset_size = self._subset_size(len(images), subset_size or self.subset_size)
        fake = self._features(images)  # (N, D)
        generator = torch.Generator().manual_seed(self.seed)
        halves = [
            self._sample_metrics(fake[torch.randperm(len(fake), generator=generator)[: len(fake) // 2]], subset_size, generator)
            for _ in range(self.jackknife_rounds)
        ]
        whole = self._sample_metrics(fake, subset_size, generator)
        metrics: dict[str, float] = {"num_images": len(images), "subset_size": subset_size}
        for name, value in whole.items():
            spread = torch.tensor([half[name] for half in halves], dtype=torch.float64)
            # delete-half jackknife: var = (N - d) / d * mean squared deviation, d = N / 2 -> the plain mean
            metrics[name + "_error"] = (spread - spread.mean()).square().mean().sqrt().item()
            # precision/recall at the matched size: the halves' mean is the estimate, not one draw
            metrics[name] = spread.mean().item() if name in ("precision", "recall") else value
        metrics["nn_distance"] = nearest_neighbour_distance(images, self.reference).mean().item()
        classifier = self.judge.classifier
        if class_labels is not None and classifier is not None:
            metrics["classifier_score"] = accuracy(classifier, (images * 2 - 1).to(classifier.device), class_labels.to(classifier.device))
        return metrics
