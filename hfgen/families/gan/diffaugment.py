"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): random,
differentiable transforms of every image the discriminator sees - real and fake, in both players' losses - so the
discriminator cannot memorise a small training set, while the generator still gets its gradients through them.

The policy names, the order and the ranges are those of the authors' `DiffAugment_pytorch.py`
(github.com/mit-han-lab/data-efficient-gans): `color` (brightness ±0.5, saturation ×[0, 2), contrast ×[0.5, 1.5)),
`translation` (up to 1/8 of the side, zero-padded), `cutout` (a zeroed square of half the side). Their draws come from
`hfgen.randomness`, one per sample, so augmented training resumes exactly and splits like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ...randomness import SampleRandomness

TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def _color(images: torch.Tensor, randomness: SampleRandomness, purpose: str) -> torch.Tensor:
    images = images + (randomness.uniform(f"{purpose}/brightness", (1, 1, 1)) - 0.5)
    mean = images.mean(dim=1, keepdim=True)
    images = (images - mean) * (randomness.uniform(f"{purpose}/saturation", (1, 1, 1)) * 2) + mean
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * (randomness.uniform(f"{purpose}/contrast", (1, 1, 1)) + 0.5) + mean


def _translation(images: torch.Tensor, randomness: SampleRandomness, purpose: str) -> torch.Tensor:
    """Each image shifted by a whole number of pixels in each direction, the uncovered border zero."""
    count, _, height, width = images.shape
    shift_y, shift_x = int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)
    dy = randomness.integers(f"{purpose}/y", 2 * shift_y + 1, (1, 1)) - shift_y  # (B, 1, 1)
    dx = randomness.integers(f"{purpose}/x", 2 * shift_x + 1, (1, 1)) - shift_x
    rows = (torch.arange(height, device=images.device).view(1, -1, 1) + dy + 1).clamp(0, height + 1)
    columns = (torch.arange(width, device=images.device).view(1, 1, -1) + dx + 1).clamp(0, width + 1)
    padded = F.pad(images, [1, 1, 1, 1])  # a zero border that out-of-range positions read
    batch = torch.arange(count, device=images.device).view(-1, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows, columns].permute(0, 3, 1, 2)


def _cutout(images: torch.Tensor, randomness: SampleRandomness, purpose: str) -> torch.Tensor:
    """A square of half the side zeroed in each image, centred anywhere (cut where it leaves the image)."""
    count, _, height, width = images.shape
    size_y, size_x = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
    top = randomness.integers(f"{purpose}/y", height + (1 - size_y % 2), (1, 1)) - size_y // 2  # (B, 1, 1)
    left = randomness.integers(f"{purpose}/x", width + (1 - size_x % 2), (1, 1)) - size_x // 2
    rows = torch.arange(height, device=images.device).view(1, -1, 1)
    columns = torch.arange(width, device=images.device).view(1, 1, -1)
    inside = (rows >= top) & (rows < top + size_y) & (columns >= left) & (columns < left + size_x)  # (B, H, W)
    return images * (~inside).unsqueeze(1).to(images.dtype)


AUGMENTATIONS: dict[str, Callable[[torch.Tensor, SampleRandomness, str], torch.Tensor]] = {
    "color": _color, "translation": _translation, "cutout": _cutout,
}


def parse_policy(policy: str) -> tuple[str, ...]:
    """`"color,translation,cutout"` (the authors' spelling) -> its names; "" -> none."""
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ValueError(
            f"--diffaugment {policy!r}: unknown {', '.join(map(repr, unknown))}; use a comma-separated subset of "
            f"{','.join(AUGMENTATIONS)} (the paper's choice for small data: color,translation,cutout)."
        )
    return names


def diff_augment(images: torch.Tensor, policy: Sequence[str], randomness: SampleRandomness, purpose: str) -> torch.Tensor:
    """(B, C, H, W) images in [-1, 1] through `policy`'s transforms in order, drawn per sample for `purpose`."""
    for name in policy:
        images = AUGMENTATIONS[name](images, randomness, f"{purpose}/{name}")
    return images
