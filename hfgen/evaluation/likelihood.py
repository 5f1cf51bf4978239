"""Bits per dimension on held-out images, for the families whose pipeline gives a log-likelihood.

- VAE: the IWAE lower bound (Burda et al. 2016) with `k` importance samples, so bits/dim is an upper bound;
- autoregressive (pixels): exact, the sum of each pixel's next-token log-probability;
- GAN: no likelihood; diffusion: not reported (its variational bound needs a discretised decoder term and
  ~1000 UNet passes per image, more than the zoo's CPU budget).
"""

from __future__ import annotations

import math

import torch
from diffusers import DiffusionPipeline

LIKELIHOOD_PIPELINES = ("VAEPipeline", "PixelGPTPipeline")


def bits_per_dim(log_likelihood: torch.Tensor, dims: int) -> float:
    """Nats per image (B,) -> mean negative log2-likelihood per dimension: -mean(log p) / (D ln 2)."""
    if dims <= 0:
        raise ValueError(f"dims (C*H*W of one image) must be positive, got {dims}.")
    return float(-log_likelihood.double().mean() / (dims * math.log(2)))


def has_likelihood(pipe: DiffusionPipeline) -> bool:
    return type(pipe).__name__ in LIKELIHOOD_PIPELINES


@torch.no_grad()
def log_likelihood(
    pipe: DiffusionPipeline, images: torch.Tensor, iwae_samples: int = 1000, generator: torch.Generator | None = None
) -> torch.Tensor:
    """log p(images) in nats, (B,), of `images` (B, C, H, W) in [0, 1]; a ValueError for families without one."""
    name = type(pipe).__name__
    if name == "VAEPipeline":
        return pipe.log_likelihood(images * 2 - 1, k=iwae_samples, generator=generator).cpu()
    if name == "PixelGPTPipeline":
        return pipe.log_likelihood(images).cpu()
    raise ValueError(f"{name} gives no log-likelihood (only {', '.join(LIKELIHOOD_PIPELINES)} do): skip bits/dim for it.")
