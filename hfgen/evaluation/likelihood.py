"""Bits per dimension on held-out images, for the families whose pipeline gives a log-likelihood.

The capability is a method with one contract, not a list of classes: a pipeline that has
`log_likelihood(images, generator=None, **options)` - images (B, C, H, W) in [0, 1], the pipelines' own output
range, to nats per image (B,) - is scored; one without it (a GAN) is not. How tight the number is belongs to the
family: the VAE's is the IWAE lower bound (an upper bound on bits/dim), the pixel GPT's is exact.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from diffusers import DiffusionPipeline


def bits_per_dim(log_likelihood: torch.Tensor, dims: int) -> float:
    """Nats per image (B,) -> mean negative log2-likelihood per dimension: -mean(log p) / (D ln 2)."""
    if dims <= 0:
        raise ValueError(f"dims (C*H*W of one image) must be positive, got {dims}.")
    return float(-log_likelihood.double().mean() / (dims * math.log(2)))


def bits_per_dim_error(log_likelihood: torch.Tensor, dims: int) -> float:
    """Standard error of `bits_per_dim` over the images: how far another draw of test images (and of a bound's
    random terms) would move it - not the gap between a bound and the true likelihood."""
    if len(log_likelihood) < 2:
        return math.nan
    return float(log_likelihood.double().std() / math.sqrt(len(log_likelihood)) / (dims * math.log(2)))


def has_likelihood(pipe: DiffusionPipeline) -> bool:
    return callable(getattr(pipe, "log_likelihood", None))


@torch.no_grad()
def log_likelihood(
    pipe: DiffusionPipeline, images: torch.Tensor, generator: torch.Generator | None = None, **options: Any
) -> torch.Tensor:
    """log p(images) in nats, (B,), of `images` (B, C, H, W) in [0, 1]; a ValueError for families without one."""
    if not has_likelihood(pipe):
        raise ValueError(f"{type(pipe).__name__} gives no log-likelihood (it has no `log_likelihood`): skip bits/dim for it.")
    return pipe.log_likelihood(images, generator=generator, **options).cpu()
