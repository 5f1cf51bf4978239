"""A convolutional VAE (Kingma & Welling 2014): encoder -> q(z | x) -> z -> decoder -> p(x | z), prior N(0, I).

Read top to bottom: encoder and decoder networks, the output dataclass, then `VAEModel` with the training
loss (`forward`), the latent-space walks (`encode`, `decode`, `sample`) and the likelihood bounds (`elbo`,
`log_likelihood`, the IWAE bound of Burda et al. 2016).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.utils.torch_utils import randn_tensor
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_vae import VAEConfig
from .distributions import LIKELIHOODS, DiagonalGaussian, standard_normal_log_prob
from .latent_mixture import LatentMixture


def _activation(config: VAEConfig) -> type[nn.Module]:
    return nn.ReLU if config.layout == "beta_vae" else nn.SiLU


class VAEEncoder(nn.Module):
    """(B, C, H, W) -> the mean and log-variance of q(z | x), each flattened to (B, Z).

    The downsampling convolutions end in a vector head (flatten -> `hidden_dim` -> Z) or, with
    `spatial_latent`, in a 3x3 convolution to a (latent_channels, H / f, W / f) map (AutoencoderKL's shape).
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        channels = config.block_out_channels
        activation = _activation(config)
        if config.layout == "beta_vae":  # the first strided convolution reads the image
            layers: list[nn.Module] = []
            inputs = [config.num_channels, *channels[:-1]]
        else:
            layers = [nn.Conv2d(config.num_channels, channels[0], 3, padding=1), activation()]
            inputs = channels[:1] + channels[:-1]
        for c_in, c_out in zip(inputs, channels):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), activation()]  # halves the side
        if config.spatial_latent:
            self.features = nn.Sequential(*layers)
            self.hidden = nn.Identity()
            self.moments = nn.Conv2d(channels[-1], 2 * config.latent_channels, 3, padding=1)
        else:
            side = config.image_size // 2 ** len(channels)
            self.features = nn.Sequential(*layers, nn.Flatten())
            self.hidden = nn.Sequential(nn.Linear(channels[-1] * side * side, config.hidden_dim), activation())
            self.moments = nn.Linear(config.hidden_dim, 2 * config.latent_dim)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        moments = self.moments(self.hidden(self.features(images)))  # (B, 2Z) or (B, 2c, h, w)
        mean, logvar = moments.chunk(2, dim=1)
        return mean.flatten(1), logvar.flatten(1)  # (B, Z) each


class VAEDecoder(nn.Module):
    """(B, Z) latents -> the parameters of p(x | z), (B, P, C, H, W) with P per pixel and channel."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        channels = config.block_out_channels
        side = config.image_size // 2 ** len(channels)
        activation = _activation(config)
        if config.spatial_latent:
            self.hidden = nn.Sequential(
                nn.Unflatten(1, config.latent_shape), nn.Conv2d(config.latent_channels, channels[-1], 3, padding=1), activation(),
            )
        else:
            self.hidden = nn.Sequential(
                nn.Linear(config.latent_dim, config.hidden_dim), activation(),
                nn.Linear(config.hidden_dim, channels[-1] * side * side), activation(),
                nn.Unflatten(1, (channels[-1], side, side)),
            )
        outputs = config.num_channels * config.parameters_per_pixel
        beta_vae = config.layout == "beta_vae"  # the last transposed convolution writes p(x | z)'s parameters
        reversed_channels = channels[::-1]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(reversed_channels, reversed_channels[1:] + ([] if beta_vae else channels[:1])):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), activation()]  # doubles the side
        self.upsample = nn.Sequential(*layers)
        if beta_vae:
            self.conv_out = nn.ConvTranspose2d(channels[0], outputs, 4, stride=2, padding=1)
        else:
            self.conv_out = nn.Conv2d(channels[0], outputs, 3, padding=1)
        self.output_shape = (config.parameters_per_pixel, config.num_channels, config.image_size, config.image_size)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        params = self.conv_out(self.upsample(self.hidden(latents)))  # (B, P * C, H, W)
        return params.view(latents.shape[0], *self.output_shape)


@dataclass
class VAEOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`): the training loss, reconstruction + beta * KL (free bits
            applied), in nats per image averaged over the batch.
        reconstruction_loss (`torch.FloatTensor` of shape `()`): mean -log p(x | z), nats per image.
        kl (`torch.FloatTensor` of shape `()`): mean KL(q(z | x) || p(z)), nats per image (>= 0).
        latents (`torch.FloatTensor` of shape `(B, Z)`): the sampled z.
        reconstruction (`torch.FloatTensor` of shape `(B, C, H, W)`): E[x | z] in [-1, 1].
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    kl: torch.FloatTensor | None = None
    latents: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None


class VAEModel(PreTrainedModel):
    r"""
    A VAE whose decoder likelihood (categorical over grey levels, discretised logistic, Bernoulli or Gaussian)
    is chosen in [`VAEConfig`]. Images are (B, C, H, W) tensors in [-1, 1].

    Example:
    ```py
    >>> from hfgen import VAEConfig, VAEModel
    >>> model = VAEModel(VAEConfig(image_size=8, grey_levels=17))
    >>> images = torch.rand(4, 1, 8, 8) * 2 - 1
    >>> out = model(images)  # out.loss, out.reconstruction_loss, out.kl: nats per image
    >>> model.log_likelihood(images, k=1000).shape  # IWAE lower bound on log p(x), nats
    torch.Size([4])
    ```
    """

    config_class = VAEConfig
    base_model_prefix = "vae"
    main_input_name = "pixel_values"

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        self.encoder = VAEEncoder(config)
        self.decoder = VAEDecoder(config)
        self.likelihood = LIKELIHOODS[config.likelihood](config)
        components = config.latent_mixture_components
        self.latent_mixture = LatentMixture(components, config.latent_dim) if components else None
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            init.xavier_uniform_(module.weight)
            init.zeros_(module.bias)

    @property
    def num_dimensions(self) -> int:
        """D = C * H * W, the number of pixel values per image (bits/dim = -log p(x) / (D ln 2))."""
        return self.config.num_channels * self.config.image_size**2

    # -- training ---------------------------------------------------------------------------------------------

    def forward(
        self,
        pixel_values: torch.Tensor,
        beta: float | None = None,
        free_bits: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        return_dict: bool = True,
    ) -> VAEOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.Tensor` of shape `(B, C, H, W)`): images in [-1, 1].
            beta (`float`, *optional*): KL weight for this step (KL warm-up); defaults to `config.beta`.
            free_bits (`float`, *optional*, defaults to 0.0): nats per latent dimension below which the KL
                is not penalised (Kingma et al. 2016), averaged over the batch.
            generator (`torch.Generator` or a list of one per image, *optional*): for the reparameterised sample.
        """
        beta = self.config.beta if beta is None else beta
        if beta < 0 or free_bits < 0:
            raise ValueError(f"beta and free_bits must be >= 0, got beta={beta}, free_bits={free_bits}.")
        images = self.likelihood.prepare(self._check_images(pixel_values))
        posterior = DiagonalGaussian(*self.encoder(images))
        latents = posterior.sample(generator)  # (B, Z)
        params = self.decoder(latents)
        reconstruction_loss = -self.likelihood.log_prob(params, images).mean()
        kl = posterior.kl()  # (B, Z)
        loss = reconstruction_loss + beta * kl.mean(0).clamp(min=free_bits).sum()
        output = VAEOutput(loss, reconstruction_loss, kl.sum(1).mean(), latents, self.likelihood.mean(params))
        return output if return_dict else output.to_tuple()

    # -- the latent space -------------------------------------------------------------------------------------

    def encode(self, pixel_values: torch.Tensor) -> DiagonalGaussian:
        """Images (B, C, H, W) in [-1, 1] -> the posterior q(z | x) over (B, Z) latents.

        A spatial latent is flattened too, so every latent walk and bound works unchanged; view it as the
        feature map with `.view(-1, *model.config.latent_shape)`.
        """
        return DiagonalGaussian(*self.encoder(self.likelihood.prepare(self._check_images(pixel_values))))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, Z), or (B, *config.latent_shape) for a spatial latent -> images E[x | z], (B, C, H, W) in [-1, 1]."""
        shapes = {(self.config.latent_dim,), tuple(self.config.latent_shape)}
        if latents.ndim < 2 or tuple(latents.shape[1:]) not in shapes:
            expected = " or ".join(f"(batch, {', '.join(map(str, shape))})" for shape in sorted(shapes, key=len))
            raise ValueError(
                f"decode takes latents of shape {expected}, got {tuple(latents.shape)}: "
                "pass encode(images).mean or a sample of that shape."
            )
        return self.likelihood.mean(self.decoder(latents.flatten(1).to(self.dtype)))

    def sample(self, num: int, generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        """`num` new images: z ~ N(0, I) decoded to E[x | z], (num, C, H, W) in [-1, 1]."""
        if num <= 0:
            raise ValueError(f"num must be positive, got {num}.")
        latents = randn_tensor((num, self.config.latent_dim), generator=generator, device=self.device, dtype=self.dtype)
        return self.decode(latents)

    # -- likelihoods ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def elbo(self, pixel_values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The evidence lower bound E_q[log p(x | z)] - KL(q || p) per image, in nats: (B,). One z per image."""
        images = self.likelihood.prepare(self._check_images(pixel_values))
        posterior = DiagonalGaussian(*self.encoder(images))
        log_px = self.likelihood.log_prob(self.decoder(posterior.sample(generator)), images)
        return log_px - posterior.kl().sum(1)

    @torch.no_grad()
    def log_likelihood(
        self, pixel_values: torch.Tensor, k: int = 1000, batch_size: int = 1000, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The IWAE bound log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z | x), per image in nats: (B,).

        It is a lower bound on log p(x) that tightens as k grows (k=1 is an ELBO). `batch_size` caps the
        (image, sample) pairs decoded at once, so memory does not grow with k.
        """
        if k <= 0:
            raise ValueError(f"k (importance samples per image) must be positive, got {k}.")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        images = self.likelihood.prepare(self._check_images(pixel_values))
        images_per_pass = max(1, batch_size // k)
        bounds = []
        for x in images.split(images_per_pass):
            posterior = DiagonalGaussian(*self.encoder(x))
            samples_per_pass = max(1, batch_size // x.shape[0])
            log_weights = []  # (s, b) chunks of log p(x | z) + log p(z) - log q(z | x)
            for s in _chunks(k, samples_per_pass):
                z = posterior.sample(generator, num_samples=s)  # (s, b, Z)
                params = self.decoder(z.flatten(0, 1))  # sample-major, matching x.repeat below
                log_px = self.likelihood.log_prob(params, x.repeat(s, 1, 1, 1)).view(s, x.shape[0])
                log_weights.append(log_px + standard_normal_log_prob(z).float() - posterior.log_prob(z).float())
            bounds.append(torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(k))
        return torch.cat(bounds)

    def _check_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        config = self.config
        expected = (config.num_channels, config.image_size, config.image_size)
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(f"pixel_values must be a torch.Tensor of shape (B, {', '.join(map(str, expected))}), got {type(pixel_values).__name__}.")
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ValueError(
                f"This VAE takes images of shape (B, {', '.join(map(str, expected))}), got {tuple(pixel_values.shape)}: "
                f"convert them with hfgen.data.images_to_tensor(images, {config.image_size}, {config.num_channels})."
            )
        if pixel_values.min() < -1.0 - 1e-3 or pixel_values.max() > 1.0 + 1e-3:
            raise ValueError(
                f"Pixel values must be in [-1, 1], got [{pixel_values.min().item():.3g}, {pixel_values.max().item():.3g}]: "
                "scale 8-bit pixels p with p / 127.5 - 1 (hfgen.data.images_to_tensor does)."
            )
        return pixel_values.to(self.dtype)


def _chunks(total: int, size: int) -> list[int]:
    """Split `total` into pieces of at most `size`: _chunks(10, 4) == [4, 4, 2]."""
    return [min(size, total - start) for start in range(0, total, size)]
