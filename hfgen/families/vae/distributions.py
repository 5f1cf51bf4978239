"""The VAE's distributions: the posterior q(z | x), the prior p(z) and the decoder likelihoods p(x | z).

diffusers' `DiagonalGaussianDistribution` fits spatial latents (it sums its KL over dims 1-3 and has no
log-density of given samples); this VAE has a latent *vector* and its IWAE bound needs log q(z | x) of k
importance samples, hence the small class below.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Literal

import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor

from .configuration_vae import VAEConfig

LOG_2PI = math.log(2 * math.pi)

DecodeMode = Literal["mean", "mode", "sample"]
"""How a decoder's p(x | z) becomes an image: its mean E[x | z] (what papers show), its most probable image, or a
draw from it (every pixel independently: the decoder's per-pixel uncertainty shows as speckle)."""


class DiagonalGaussian:
    """q(z | x) = N(mean, diag(exp(logvar))) over latent vectors of shape (B, Z)."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mean, self.logvar = mean, logvar
        self.std = torch.exp(0.5 * logvar)

    def sample(self, generator: torch.Generator | list[torch.Generator] | None = None, num_samples: int | None = None) -> torch.Tensor:
        """Reparameterised z = mean + std * eps: (B, Z), or (num_samples, B, Z) when num_samples is given."""
        shape = self.mean.shape if num_samples is None else (num_samples, *self.mean.shape)
        eps = randn_tensor(shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z | x) summed over the latent dimensions: (..., B, Z) -> (..., B)."""
        return -0.5 * ((z - self.mean) ** 2 / self.std**2 + self.logvar + LOG_2PI).sum(-1)

    def kl(self) -> torch.Tensor:
        """KL(q(z | x) || N(0, I)) per latent dimension, in nats, float32: (B, Z). Sum over Z for the per-image KL.

        In float32 even under bf16 autocast: near logvar = 0, bf16's exp(logvar) - 1 - logvar cancels to
        negative "KL" values (the tiny digits VAE logged -5e-4 at its third bf16 step)."""
        mean, logvar = self.mean.float(), self.logvar.float()
        return 0.5 * (mean**2 + logvar.exp() - 1.0 - logvar)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log p(z) under the prior N(0, I), summed over the last dimension."""
    return -0.5 * (z**2 + LOG_2PI).sum(-1)


def pixel_levels(images: torch.Tensor, grey_levels: int) -> torch.Tensor:
    """[-1, 1] pixels -> integer levels 0..grey_levels-1 (the data's actual discrete values)."""
    return ((images + 1) / 2 * (grey_levels - 1)).round().clamp(0, grey_levels - 1).long()


def level_values(levels: torch.Tensor, grey_levels: int) -> torch.Tensor:
    """Integer levels 0..grey_levels-1 -> their [-1, 1] pixel values."""
    return levels.float() / (grey_levels - 1) * 2 - 1


def uniform_noise(
    shape: tuple[int, ...], generator: torch.Generator | list[torch.Generator] | None, device: torch.device
) -> torch.Tensor:
    """U(0, 1) noise in (0, 1) from diffusers' `randn_tensor` (which takes one generator per image), through the
    normal CDF."""
    normal = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
    return (0.5 * (1 + torch.erf(normal / math.sqrt(2)))).clamp(1e-6, 1 - 1e-6)


class DecoderLikelihood(ABC):
    """p(x | z) from the decoder's output `params` of shape (B, P, C, H, W), P = `config.parameters_per_pixel`."""

    def __init__(self, config: VAEConfig) -> None:
        self.config = config

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """The data as this likelihood models it (identity except for Bernoulli's binarisation)."""
        return images

    @abstractmethod
    def log_prob(self, params: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """log p(x | z) in nats, summed over pixels and channels: (B,)."""

    @abstractmethod
    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x | z] in [-1, 1], the image shown for a latent: (B, C, H, W)."""

    @abstractmethod
    def mode(self, params: torch.Tensor) -> torch.Tensor:
        """The most probable value of every pixel, in [-1, 1]: (B, C, H, W)."""

    @abstractmethod
    def sample(self, params: torch.Tensor, generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        """x ~ p(x | z), pixels drawn independently, in [-1, 1]: (B, C, H, W)."""

    def decode(
        self, params: torch.Tensor, how: DecodeMode = "mean", generator: torch.Generator | list[torch.Generator] | None = None
    ) -> torch.Tensor:
        """The image of one decoder output by `how` (mean, mode or sample), in [-1, 1]: (B, C, H, W)."""
        if how == "mean":
            return self.mean(params)
        if how == "mode":
            return self.mode(params)
        if how == "sample":
            return self.sample(params, generator)
        raise ValueError(f"Unknown decode {how!r}: use 'mean' (the default), 'mode' or 'sample'.")


class Categorical(DecoderLikelihood):
    """A softmax over the grey levels of every pixel (PixelRNN-style): a true discrete likelihood."""

    def log_prob(self, params: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        levels = pixel_levels(images, self.config.grey_levels)  # (B, C, H, W)
        return -F.cross_entropy(params.float(), levels, reduction="none").sum((1, 2, 3))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        values = torch.linspace(-1, 1, self.config.grey_levels, device=params.device)  # level -> pixel value
        return torch.einsum("bpchw,p->bchw", params.float().softmax(1), values)

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        return level_values(params.argmax(1), self.config.grey_levels)

    def sample(self, params: torch.Tensor, generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        gumbel = -torch.log(-torch.log(uniform_noise(tuple(params.shape), generator, params.device)))  # (B, P, C, H, W)
        return level_values((params.float() + gumbel).argmax(1), self.config.grey_levels)  # Gumbel-max: a softmax draw


class DiscretisedLogistic(DecoderLikelihood):
    """A logistic per pixel integrated over each grey level's bin (PixelCNN++, Salimans et al. 2017, one component).

    The end bins extend to -inf / +inf, so the probabilities of all levels sum to one.
    """

    def log_prob(self, params: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        params = params.float()
        mean, inv_scale = params[:, 0], torch.exp(-params[:, 1].clamp(min=-7.0))  # (B, C, H, W)
        top = self.config.grey_levels - 1
        levels = pixel_levels(images, self.config.grey_levels)
        centre, half_bin = levels / top * 2 - 1, 1.0 / top
        upper = torch.where(levels == top, math.inf, (centre + half_bin - mean) * inv_scale)
        lower = torch.where(levels == 0, -math.inf, (centre - half_bin - mean) * inv_scale)
        # log(sigmoid(u) - sigmoid(l)) = logsigmoid(u) + logsigmoid(-l) + log(1 - exp(l - u)), exact and stable.
        log_bin = F.logsigmoid(upper) + F.logsigmoid(-lower) + torch.log(-torch.expm1(lower - upper))
        return log_bin.sum((1, 2, 3))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params[:, 0].float().clamp(-1, 1)

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        """The bin holding the logistic's centre (the end bins also hold everything beyond them)."""
        return level_values(pixel_levels(params[:, 0].float().clamp(-1, 1), self.config.grey_levels), self.config.grey_levels)

    def sample(self, params: torch.Tensor, generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        mean, scale = params[:, 0].float(), torch.exp(params[:, 1].float().clamp(min=-7.0))
        u = uniform_noise(tuple(mean.shape), generator, params.device)
        continuous = mean + scale * torch.logit(u)  # inverse CDF of the logistic
        return level_values(pixel_levels(continuous.clamp(-1, 1), self.config.grey_levels), self.config.grey_levels)


class Bernoulli(DecoderLikelihood):
    """Independent Bernoulli pixels for binary data; grey images are thresholded at mid-grey first."""

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        return torch.where(images > 0, 1.0, -1.0).to(images.dtype)

    def log_prob(self, params: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        targets = (images > 0).float()
        return -F.binary_cross_entropy_with_logits(params[:, 0].float(), targets, reduction="none").sum((1, 2, 3))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params[:, 0].float().sigmoid() * 2 - 1

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        return torch.where(params[:, 0].float() > 0, 1.0, -1.0)

    def sample(self, params: torch.Tensor, generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        probabilities = params[:, 0].float().sigmoid()
        return torch.where(uniform_noise(tuple(probabilities.shape), generator, params.device) < probabilities, 1.0, -1.0)


class Gaussian(DecoderLikelihood):
    """A Gaussian density per pixel with a fixed or learned variance (a density: not comparable in bits/dim)."""

    def log_prob(self, params: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        mean = params[:, 0].float()
        if self.config.gaussian_variance == "learned":
            logvar = params[:, 1].float().clamp(-9.0, 2.0)  # bounded so a collapsing variance cannot blow the loss up
        else:
            logvar = torch.full_like(mean, 2 * math.log(self.config.gaussian_std))
        return -0.5 * ((images - mean) ** 2 / logvar.exp() + logvar + LOG_2PI).sum((1, 2, 3))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params[:, 0].float().clamp(-1, 1)

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        return self.mean(params)

    def sample(self, params: torch.Tensor, generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        mean = params[:, 0].float()
        if self.config.gaussian_variance == "learned":
            std = torch.exp(0.5 * params[:, 1].float().clamp(-9.0, 2.0))
        else:
            std = torch.full_like(mean, self.config.gaussian_std)
        return (mean + std * randn_tensor(tuple(mean.shape), generator=generator, device=params.device)).clamp(-1, 1)


LIKELIHOODS: dict[str, type[DecoderLikelihood]] = {
    "categorical": Categorical,
    "logistic": DiscretisedLogistic,
    "bernoulli": Bernoulli,
    "gaussian": Gaussian,
}
