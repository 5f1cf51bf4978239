"""PIL images -> float tensors in [-1, 1], applied lazily with `Dataset.with_transform` (no materialised copy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image


def images_to_tensor(images: list[Image.Image], resolution: int, channels: int) -> torch.Tensor:
    """A list of PIL images -> (B, C, resolution, resolution) float32 in [-1, 1]."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}.")
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    for image in images:
        image = image.convert(mode)
        if image.size != (resolution, resolution):
            image = image.resize((resolution, resolution), Image.Resampling.BICUBIC)
        arrays.append(np.asarray(image, dtype=np.uint8))
    pixels = torch.from_numpy(np.stack(arrays))  # (B, H, W) or (B, H, W, 3)
    pixels = pixels.unsqueeze(1) if channels == 1 else pixels.permute(0, 3, 1, 2)
    return pixels.float().div_(127.5).sub_(1.0)


def image_transform(resolution: int, channels: int) -> Callable[[dict[str, list[Any]]], dict[str, torch.Tensor]]:
    """A batched transform for `Dataset.with_transform`: {"image": [PIL]} -> {"pixel_values": (B, C, H, W)}."""

    def transform(batch: dict[str, list[Any]]) -> dict[str, torch.Tensor]:
        out = {"pixel_values": images_to_tensor(batch["image"], resolution, channels)}
        if "label" in batch:
            out["labels"] = torch.as_tensor(batch["label"], dtype=torch.long)
        return out

    return transform
