"""The RNG contract: every random number a training step draws is a function of (seed, global sample index, purpose).

Optimizer step `s` trains on the samples `s * G ... s * G + G - 1` of the run's data stream, G being the global
batch (per-process batch x processes x accumulation steps; the order is `training/batches.py`'s). Each of those
samples draws its random numbers - diffusion's noise and timestep, a dropped label, the VAE's reparameterisation
noise, the GAN's latents - from generators of its own, seeded by the run's seed, the sample's index in the stream
and what the numbers are for. How a global batch is split over processes, machines and accumulation steps, and
how often the run was stopped and resumed, then changes none of them: a checkpoint written by 8 processes
resumes on 3 with the same data and the same noise for every sample.

Two things stay tied to the split, and the Trainer keeps them reproducible rather than split-free: layers that
mix the rows of a micro-batch (BatchNorm's batch statistics) and dropout, whose masks torch draws from the global
RNG - the Trainer seeds that from (seed, the micro-batch's first sample index) before each forward, so a run
resumes exactly on the same split and needs no per-process RNG files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor


def sample_seed(seed: int, sample_index: int, purpose: str) -> int:
    """The 63-bit seed of one sample's generator for one purpose: a hash, so nearby indices give unrelated streams."""
    digest = hashlib.blake2b(f"{seed}/{sample_index}/{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def sample_numpy_generators(seed: int, sample_indices: Sequence[int], purpose: str) -> list[np.random.Generator]:
    """One numpy generator per sample, for data transforms (random crops and flips) that draw with numpy."""
    return [np.random.default_rng(sample_seed(seed, index, purpose)) for index in sample_indices]


class SampleRandomness:
    """The random numbers of one micro-batch, drawn sample by sample on CPU generators (the same numbers on any
    device), then moved to `device`. Every method returns a tensor whose first dimension is the micro-batch.

    `step` is the optimizer step the micro-batch belongs to: schedules that change along training (the VAE's KL
    warm-up) read it rather than counting calls, which differ with the number of micro-batches per step.
    """

    def __init__(self, seed: int, sample_indices: Sequence[int], step: int, device: torch.device | str = "cpu") -> None:
        self.seed, self.sample_indices, self.step = seed, list(sample_indices), step
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.sample_indices)

    def generators(self, purpose: str) -> list[torch.Generator]:
        """One CPU generator per sample for `purpose` (e.g. `"noise"`), e.g. for diffusers' `randn_tensor`."""
        return [torch.Generator().manual_seed(sample_seed(self.seed, index, purpose)) for index in self.sample_indices]

    def normal(self, purpose: str, shape: Sequence[int] = (), dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(B, *shape) standard normal numbers."""
        return randn_tensor((len(self), *shape), generator=self.generators(purpose), device=self.device, dtype=dtype)

    def uniform(self, purpose: str, shape: Sequence[int] = ()) -> torch.Tensor:
        """(B, *shape) numbers uniform in [0, 1)."""
        rows = [torch.rand(tuple(shape), generator=g) for g in self.generators(purpose)]
        return torch.stack(rows).to(self.device)

    def integers(self, purpose: str, high: int, shape: Sequence[int] = ()) -> torch.Tensor:
        """(B, *shape) integers uniform in [0, high)."""
        rows = [torch.randint(high, tuple(shape), generator=g) for g in self.generators(purpose)]
        return torch.stack(rows).to(self.device)
