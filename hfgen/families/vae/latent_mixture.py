"""An ex-post density on a VAE's latent space: a Gaussian mixture fitted to the posterior means of the training set,
sampled instead of the N(0, I) prior (Ghosh et al. 2020, "From Variational to Deterministic Autoencoders"; pythae's
`GaussianMixtureSampler`). The aggregate posterior rarely fills the prior - the holes the prior samples from decode
to blurs - so drawing z where the data's codes are improves samples with no retraining.
"""

from __future__ import annotations

import torch
from diffusers.utils.torch_utils import randn_tensor
from torch import nn


class LatentMixture(nn.Module):
    """K full-covariance Gaussians over Z latents, as buffers (saved with the model's weights): mixing weights (K,),
    means (K, Z) and Cholesky factors of the covariances (K, Z, Z)."""

    def __init__(self, components: int, latent_dim: int) -> None:
        super().__init__()
        self.register_buffer("weights", torch.full((components,), 1 / components))
        self.register_buffer("means", torch.zeros(components, latent_dim))
        self.register_buffer("scale_tril", torch.eye(latent_dim).repeat(components, 1, 1))

    @torch.no_grad()
    def fit(self, latents: torch.Tensor, seed: int = 0) -> None:
        """Fit to `latents` (N, Z) with scikit-learn's `GaussianMixture` (EM, k-means start, seeded) - pythae's
        sampler, whose defaults (full covariances) this keeps."""
        from sklearn.mixture import GaussianMixture  # training only: sampling a saved mixture needs no scikit-learn

        if len(latents) < len(self.weights):
            raise ValueError(
                f"A mixture of {len(self.weights)} components needs at least as many training images, got {len(latents)}: "
                "lower --latent_mixture_components."
            )
        mixture = GaussianMixture(len(self.weights), covariance_type="full", random_state=seed)
        mixture.fit(latents.double().cpu().numpy())
        self.weights.copy_(torch.from_numpy(mixture.weights_))
        self.means.copy_(torch.from_numpy(mixture.means_))
        self.scale_tril.copy_(torch.linalg.cholesky(torch.from_numpy(mixture.covariances_)))

    def sample(self, count: int, generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        """(count, Z) latents: a component drawn by its weight, then its Gaussian - from `generator` (one, or one per
        sample, on any device), as the prior's `randn_tensor` draws are."""
        generators = generator if isinstance(generator, list) else [generator] * count
        picks = torch.cat([
            torch.multinomial(self.weights.to(g.device if g is not None else self.weights.device), 1, generator=g)
            for g in generators
        ]).to(self.means.device)
        noise = randn_tensor((count, self.means.shape[1]), generator=generator, device=self.means.device, dtype=self.means.dtype)
        return self.means[picks] + (self.scale_tril[picks] @ noise.unsqueeze(-1)).squeeze(-1)
