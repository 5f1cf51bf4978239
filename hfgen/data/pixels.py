"""Images <-> token sequences for the pixel GPT (ImageGPT-style, without colour clustering).

An image becomes its grey levels in raster order - row by row, left to right, channels innermost - one token per
level (`grey_levels` tokens: 17 for digits, 256 for 8-bit images such as Fashion-MNIST, so its likelihood is the
exact 8-bit one), preceded by one conditioning token: the start token (`grey_levels`) for unconditional models,
or the class token `grey_levels + 1 + label` for class-conditional ones. A D-pixel image is a (1 + D)-token
sequence; the model predicts tokens 1..D, so its NLL is exactly -log p(image) (or -log p(image | class)).

8-bit storage of a level v is round(v * 255 / (grey_levels - 1)) (how `digits` stores 0..16), which is exactly
invertible; an 8-bit value that is not such a level is outside the vocabulary and rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from .transforms import ROW_GENERATORS, image_pixels


@dataclass(frozen=True)
class PixelVocabulary:
    """Token ids of one pixel model: levels 0..G-1, then the start token, then one token per class."""

    grey_levels: int
    num_classes: int | None = None

    def __post_init__(self) -> None:
        if not 2 <= self.grey_levels <= 256:
            raise ValueError(f"grey_levels must be in [2, 256], got {self.grey_levels}.")

    @property
    def start_token(self) -> int:
        return self.grey_levels

    @property
    def vocab_size(self) -> int:
        return self.grey_levels + 1 + (self.num_classes or 0)

    def first_tokens(self, labels: torch.Tensor | None, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """(B, 1): the class token of each label, or the start token when unconditional."""
        if labels is None:
            return torch.full((batch_size, 1), self.start_token, dtype=torch.long, device=device)
        return (labels.to(device=device, dtype=torch.long) + self.grey_levels + 1).view(-1, 1)


def uint8_to_levels(pixels: torch.Tensor, grey_levels: int) -> torch.Tensor:
    """(…) uint8 -> (…) long levels in [0, G-1]; a value that is not the 8-bit form of a level raises ValueError."""
    levels = torch.round(pixels.double() * (grey_levels - 1) / 255).long()
    stray = levels_to_uint8(levels, grey_levels) != pixels
    if stray.any():
        bad = sorted(set(pixels[stray].tolist()))[:8]
        raise ValueError(
            f"Pixel values {bad} are outside this model's vocabulary of {grey_levels} grey levels (8-bit values "
            f"round(v * 255 / {grey_levels - 1})): pass images with exactly those levels, e.g. from the data set "
            "the model was trained on or from this pipeline's own output."
        )
    return levels


def levels_to_uint8(levels: torch.Tensor, grey_levels: int) -> torch.Tensor:
    return torch.round(levels.double() * 255 / (grey_levels - 1)).to(torch.uint8)


def images_to_uint8(images: list[Image.Image] | torch.Tensor | np.ndarray, resolution: int, channels: int) -> torch.Tensor:
    """PIL images, or pipeline output in [0, 1] ("pt" (B, C, H, W) / "np" (B, H, W, C)) -> (B, C, H, W) uint8."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images).permute(0, 3, 1, 2)
    if isinstance(images, torch.Tensor):
        if images.ndim != 4 or images.shape[1:] != (channels, resolution, resolution):
            raise ValueError(
                f"Expected images shaped (B, {channels}, {resolution}, {resolution}), got {tuple(images.shape)}: "
                "pass the pipeline's output_type='pt' layout."
            )
        if images.dtype == torch.uint8:
            return images.cpu()
        if images.min() < 0 or images.max() > 1:
            raise ValueError("Float images must be in [0, 1] (the pipeline's output_type='pt'); rescale them.")
        return torch.round(images.detach().double().cpu() * 255).to(torch.uint8)
    if not isinstance(images, (list, tuple)) or not all(isinstance(i, Image.Image) for i in images):
        raise TypeError(f"images must be a list of PIL images or a tensor in [0, 1], got {type(images).__name__}.")
    sizes = {i.size for i in images}
    if sizes != {(resolution, resolution)}:
        raise ValueError(f"Images must be {resolution}x{resolution} (resizing would invent grey levels), got sizes {sorted(sizes)}.")
    return image_pixels(list(images), resolution, channels)


def raster(levels: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W*C): row by row, left to right, channels innermost."""
    return levels.permute(0, 2, 3, 1).reshape(levels.shape[0], -1)


def unraster(tokens: torch.Tensor, resolution: int, channels: int) -> torch.Tensor:
    """(B, H*W*C) -> (B, C, H, W), the inverse of `raster`."""
    return tokens.reshape(tokens.shape[0], resolution, resolution, channels).permute(0, 3, 1, 2)


def pixel_transform(
    resolution: int, channels: int, vocabulary: PixelVocabulary, class_conditional: bool,
    center_crop: bool = False, random_flip: bool = False,
) -> Callable[[dict[str, list[Any]]], dict[str, torch.Tensor]]:
    """A batched transform for `Dataset.with_transform`: {"image", "label"} -> {"input_ids": (B, 1 + D)}; crops
    and flips as `image_transform` does (neither invents a grey level)."""

    def transform(batch: dict[str, list[Any]]) -> dict[str, torch.Tensor]:
        pixels = image_pixels(batch["image"], resolution, channels, center_crop, random_flip, batch.get(ROW_GENERATORS))
        labels = torch.as_tensor(batch["label"]) if class_conditional else None
        first = vocabulary.first_tokens(labels, len(batch["image"]))
        return {"input_ids": torch.cat([first, raster(uint8_to_levels(pixels, vocabulary.grey_levels))], dim=1)}

    return transform
