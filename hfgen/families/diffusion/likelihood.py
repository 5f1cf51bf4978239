"""The diffusion model's variational bound on -log p(x) (Ho et al. 2020, eq. 5), in nats per image.

    L = KL(q(x_T | x_0) || N(0, I))                                  prior term, no network
      + sum_{t=2..T} KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))    one UNet pass per t
      - log p(x_0 | x_1)                                              discretised Gaussian decoder (Ho et al. eq. 13)

Every alpha, beta and the model's variance come from the diffusers `DDPMScheduler` the model was trained with; the
model's mean is the scheduler's own (the posterior mean at the predicted x_0, clipped when its config clips).
The decoder integrates the Gaussian over each grey level's bin of the data (17 levels for digits, 256 for 8-bit
images) with the end bins open, so the result is a discrete likelihood comparable with the VAE's and the pixel
GPT's bits/dim.

A full bound costs T (1,000) UNet passes per image. `num_timesteps` = K < T - 1 estimates the middle sum from K
timesteps, one drawn uniformly in each of K strata of 2..T (geometric: narrow at low noise, where the terms are
large) and weighted by its stratum's size: the estimate is unbiased (its mean over draws is the full bound) but no
longer a bound on every draw, and its variance grows as K shrinks; the prior and decoder terms stay exact.
"""

from __future__ import annotations

import math

import torch
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.utils.torch_utils import randn_tensor


def gaussian_kl(mean_q: torch.Tensor, var_q: torch.Tensor, mean_p: torch.Tensor, var_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mean_q, var_q) || N(mean_p, var_p)) summed over (C, H, W): (B, C, H, W) -> (B,)."""
    kl = 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1)
    return kl.flatten(1).sum(1)


def discretised_gaussian_log_likelihood(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, grey_levels: int) -> torch.Tensor:
    """log of the Gaussian's mass on each pixel's grey-level bin, summed over (C, H, W): (B, C, H, W) -> (B,).

    `images` in [-1, 1] on the `grey_levels` grid; bins are 2 / (grey_levels - 1) wide, the end bins reach +-inf.
    """
    normal = torch.distributions.Normal(mean.double(), std.double())
    half_bin = 1.0 / (grey_levels - 1)
    x = images.double()
    upper = torch.where(x > 1 - half_bin, torch.ones_like(x), normal.cdf(x + half_bin))
    lower = torch.where(x < -1 + half_bin, torch.zeros_like(x), normal.cdf(x - half_bin))
    # in the tails the CDF difference underflows: fall back to the density times the bin width
    mass = torch.where(upper - lower > 1e-12, upper - lower, normal.log_prob(x).exp() * 2 * half_bin)
    return torch.log(mass.clamp(min=1e-300)).flatten(1).sum(1).float()


def predicted_original(scheduler: DDPMScheduler, output: torch.Tensor, noisy: torch.Tensor, t: int) -> torch.Tensor:
    """The UNet's estimate of x_0 from x_t, as `DDPMScheduler.step` forms it (clipped when its config clips)."""
    alpha_prod = scheduler.alphas_cumprod[t]
    config = scheduler.config
    if config.prediction_type == "epsilon":
        original = (noisy - (1 - alpha_prod).sqrt() * output) / alpha_prod.sqrt()
    elif config.prediction_type == "v_prediction":
        original = alpha_prod.sqrt() * noisy - (1 - alpha_prod).sqrt() * output
    elif config.prediction_type == "sample":
        original = output
    else:
        raise ValueError(f"No variational bound for prediction_type {config.prediction_type!r}: use epsilon, v_prediction or sample.")
    return original.clamp(-config.clip_sample_range, config.clip_sample_range) if config.clip_sample else original


def posterior(scheduler: DDPMScheduler, original: torch.Tensor, noisy: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """q(x_{t-1} | x_t, x_0) for t >= 1: its mean (B, C, H, W) and variance (a 0-d tensor), Ho et al. eqs. 6-7."""
    alpha_prod, alpha_prod_prev = scheduler.alphas_cumprod[t], scheduler.alphas_cumprod[t - 1]
    beta = scheduler.betas[t]
    mean = (alpha_prod_prev.sqrt() * beta * original + scheduler.alphas[t].sqrt() * (1 - alpha_prod_prev) * noisy) / (1 - alpha_prod)
    return mean, (1 - alpha_prod_prev) / (1 - alpha_prod) * beta


def model_variance(scheduler: DDPMScheduler, t: int) -> torch.Tensor:
    """The variance of p(x_{t-1} | x_t) for t >= 1: the posterior's (fixed_small) or beta_t (fixed_large)."""
    variance_type = scheduler.config.variance_type or "fixed_small"  # None: DDPMScheduler's own default
    if variance_type in ("fixed_small", "fixed_small_log"):
        return posterior(scheduler, torch.zeros(()), torch.zeros(()), t)[1]
    if variance_type in ("fixed_large", "fixed_large_log"):
        return scheduler.betas[t]
    raise ValueError(f"No variational bound for variance_type {variance_type!r}: use a fixed_small or fixed_large model.")


def stratified_timesteps(first: int, last: int, num: int, generator: torch.Generator | None) -> list[tuple[int, float]]:
    """`num` timesteps of first..last (inclusive), one uniform draw per stratum, each with its stratum's size.

    Strata are geometric in t - one timestep wide near `first`, wide at high noise - because the KL terms are large
    and change fast at small t and are tiny and flat at large t: equal strata would weight one draw of a steep
    region by its whole width (5.6 bits/dim at 25 terms vs 2.6 at 100 on a digits model).
    """
    span = last - first + 1
    geometric = (torch.logspace(0, math.log10(span + 1), num + 1, dtype=torch.float64) - 1).round().long().tolist()
    edges = [0]
    for i, edge in enumerate(geometric[1:], 1):  # strictly increasing, leaving one timestep per later stratum
        edges.append(min(max(edge, edges[-1] + 1), span - (num - i)))
    draws = []
    for low, high in zip(edges[:-1], edges[1:]):
        offset = torch.randint(high - low, (1,), generator=generator).item() if high - low > 1 else 0
        draws.append((first + low + offset, float(high - low)))
    return draws


@torch.no_grad()
def variational_bound(
    unet: UNet2DModel,
    scheduler: DDPMScheduler,
    images: torch.Tensor,
    grey_levels: int,
    num_timesteps: int | None = None,
    class_labels: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The bound L >= -log p(x) in nats per image, (B,), of `images` (B, C, H, W) in [-1, 1] on the grey-level grid.

    `num_timesteps` (default: all T - 1) of the KL terms t = 2..T are evaluated, stratified; `class_labels` go to a
    conditional UNet (its "no class" label gives the unconditional p(x)). Diffusers indexes timesteps from 0: Ho's
    t is index t - 1 here.
    """
    last = scheduler.config.num_train_timesteps - 1  # Ho's T
    if last < 1:
        raise ValueError(f"A variational bound needs at least 2 training timesteps, the scheduler has {last + 1}.")
    if num_timesteps is None or num_timesteps >= last:
        num_timesteps = last
    if num_timesteps <= 0:
        raise ValueError(f"num_timesteps (--bpd_timesteps) must be positive, got {num_timesteps}.")
    if grey_levels < 2:
        raise ValueError(f"grey_levels must be at least 2, got {grey_levels}.")
    device = images.device

    def denoise(t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t drawn from q(x_t | x_0), and the UNet's x_0 from it."""
        noise = randn_tensor(images.shape, generator=generator, device=device, dtype=images.dtype)
        timesteps = torch.full((len(images),), t, device=device, dtype=torch.long)
        noisy = scheduler.add_noise(images, noise, timesteps)
        output = unet(noisy, timesteps, class_labels=class_labels).sample
        return noisy, predicted_original(scheduler, output, noisy, t)

    # 1. prior: KL(q(x_T | x_0) || N(0, I))
    alpha_prod_last = scheduler.alphas_cumprod[last]
    prior = gaussian_kl(alpha_prod_last.sqrt() * images, 1 - alpha_prod_last, torch.zeros_like(images), torch.ones(()))
    # 2. the KL terms t = 2..T (indices 1..T-1), a stratified subsample weighted by stratum size
    middle = torch.zeros(len(images), device=device)
    for t, weight in stratified_timesteps(1, last, num_timesteps, generator):
        noisy, original = denoise(t)
        true_mean, true_variance = posterior(scheduler, images, noisy, t)
        model_mean, _ = posterior(scheduler, original, noisy, t)
        middle += weight * gaussian_kl(true_mean, true_variance, model_mean, model_variance(scheduler, t))
    # 3. decoder: -log p(x_0 | x_1), a Gaussian at the predicted x_0 with the clipped first variance (Ho et al.)
    _, original = denoise(0)
    decoder_std = model_variance(scheduler, 1).sqrt().expand_as(original)
    decoder = -discretised_gaussian_log_likelihood(images, original, decoder_std, grey_levels)
    return prior.to(device) + middle + decoder
