"""Image conversions every family shares: pipeline outputs and sample grids."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from diffusers.utils import make_image_grid
from PIL import Image, ImageOps

OutputType = Literal["pil", "np", "pt"]
LatentOutputType = Literal["pil", "np", "pt", "latent"]
"""What a pipeline with latents takes: "latent" returns them as its loop left them, before decoding."""


def postprocess(images: torch.Tensor, output_type: OutputType = "pil") -> list[Image.Image] | np.ndarray | torch.Tensor:
    """(B, C, H, W) in [-1, 1] -> PIL list, (B, H, W, C) float numpy in [0, 1], or (B, C, H, W) tensor in [0, 1]."""
    if output_type not in ("pil", "np", "pt"):
        raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}.")
    images = (images.float() / 2 + 0.5).clamp(0, 1)
    if output_type == "pt":
        return images
    array = images.cpu().permute(0, 2, 3, 1).numpy()
    if output_type == "np":
        return array
    pixels = (array * 255).round().astype(np.uint8)
    return [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pixels]


def image_grid(
    images: torch.Tensor | list[Image.Image], cols: int | None = None, min_side: int = 64, border: int = 2
) -> Image.Image:
    """A grid, near-square unless `cols` is given (`cols=len(images)`: one strip of frames). Tiny images (8x8
    digits) are enlarged with nearest-neighbour to stay readable; a thin mid-grey border keeps cells apart."""
    pil = postprocess(images, "pil") if isinstance(images, torch.Tensor) else list(images)
    if not pil:
        raise ValueError("image_grid needs at least one image.")
    side = max(pil[0].size)
    if side < min_side:
        scale = math.ceil(min_side / side)
        pil = [p.resize((p.width * scale, p.height * scale), Image.Resampling.NEAREST) for p in pil]
    pil = [ImageOps.expand(p, border=border, fill=(128,) * len(p.getbands())) for p in pil]
    cols = cols or math.ceil(math.sqrt(len(pil)))
    rows = math.ceil(len(pil) / cols)
    pil += [Image.new(pil[0].mode, pil[0].size)] * (rows * cols - len(pil))
    return make_image_grid(pil, rows=rows, cols=cols)


def save_image_grid(images: torch.Tensor, path: str | Path, cols: int | None = None) -> None:
    """`image_grid(images, cols)` written to `path`; its folder is created only now, once there is something to write
    (a command refused for bad input leaves nothing behind)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, cols=cols).save(path)
