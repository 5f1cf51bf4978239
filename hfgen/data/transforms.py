"""PIL images -> float tensors in [-1, 1], applied lazily with `Dataset.with_transform` (no materialised copy).

Every image goes through diffusers' training preprocessing (`train_unconditional.py`): resize the shorter side to
the resolution, crop a square (`center_crop`, else a random one), and with `random_flip` mirror it left-right
with probability 1/2. A square image at the resolution is read as it is, bit for bit.

The random choices come from the batch itself: the Trainer adds `ROW_GENERATORS`, one `numpy.random.Generator`
per row seeded by (run seed, the row's position in the run's data stream), so a resumed run - on any number of
processes - crops and flips exactly as an uninterrupted one, and no process RNG is touched. Without them (test
images, evaluation, caches) every transform shows the deterministic view: the center crop, unflipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

ROW_GENERATORS = "row_generators"
"""The batch key of the per-row random generators the Trainer adds (see `hfgen.training.batches.SeededRows`)."""


def _square(image: Image.Image, resolution: int, center_crop: bool, random_flip: bool, rng: np.random.Generator | None) -> np.ndarray:
    """One image -> (resolution, resolution[, 3]) uint8: resize the shorter side, crop, maybe flip."""
    width, height = image.size
    if (width, height) != (resolution, resolution):
        scale = resolution / min(width, height)
        width, height = max(resolution, round(width * scale)), max(resolution, round(height * scale))
        image = image.resize((width, height), Image.Resampling.BICUBIC)
    if center_crop or rng is None:
        left, top = (width - resolution) // 2, (height - resolution) // 2
    else:
        left, top = int(rng.integers(width - resolution + 1)), int(rng.integers(height - resolution + 1))
    pixels = np.asarray(image, dtype=np.uint8)[top : top + resolution, left : left + resolution]
    if random_flip and rng is not None and rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    return pixels


def image_pixels(
    images: Sequence[Image.Image],
    resolution: int,
    channels: int,
    center_crop: bool = True,
    random_flip: bool = False,
    generators: Sequence[np.random.Generator] | None = None,
) -> torch.Tensor:
    """PIL images -> (B, C, resolution, resolution) uint8; the random crop and flip draw from `generators` (one
    per image), and without them the view is deterministic (center crop, no flip)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}.")
    mode = "L" if channels == 1 else "RGB"
    rngs = generators if generators is not None else [None] * len(images)
    arrays = [_square(image.convert(mode), resolution, center_crop, random_flip, rng) for image, rng in zip(images, rngs)]
    pixels = torch.from_numpy(np.stack(arrays))  # (B, H, W) or (B, H, W, 3)
    return pixels.unsqueeze(1) if channels == 1 else pixels.permute(0, 3, 1, 2)


def images_to_tensor(images: Sequence[Image.Image], resolution: int, channels: int) -> torch.Tensor:
    """A list of PIL images -> (B, C, resolution, resolution) float32 in [-1, 1], center-cropped."""
    return image_pixels(images, resolution, channels).float().div_(127.5).sub_(1.0)


def image_transform(
    resolution: int, channels: int, center_crop: bool = False, random_flip: bool = False
) -> Callable[[dict[str, list[Any]]], dict[str, torch.Tensor]]:
    """A batched transform for `Dataset.with_transform`: {"image": [PIL]} -> {"pixel_values": (B, C, H, W)},
    with diffusers' `--center_crop` / `--random_flip` (defaults as there: a random crop, no flip)."""

    def transform(batch: dict[str, list[Any]]) -> dict[str, torch.Tensor]:
        pixels = image_pixels(batch["image"], resolution, channels, center_crop, random_flip, batch.get(ROW_GENERATORS))
        out = {"pixel_values": pixels.float().div_(127.5).sub_(1.0)}
        if "label" in batch:
            out["labels"] = torch.as_tensor(batch["label"], dtype=torch.long)
        return out

    return transform
