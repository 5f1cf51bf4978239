"""Every hyperparameter of a VAE: image shape, network sizes, latent size, decoder likelihood and beta."""

from __future__ import annotations

from typing import Literal

from transformers import PretrainedConfig

Likelihood = Literal["categorical", "logistic", "bernoulli", "gaussian"]
Layout = Literal["hfgen", "beta_vae"]


class VAEConfig(PretrainedConfig):
    r"""
    Configuration of a [`VAEModel`]: a convolutional encoder to a diagonal Gaussian over a latent vector (or,
    with `spatial_latent`, a latent feature map as in diffusers' `AutoencoderKL`), a standard normal prior, and
    a convolutional decoder that outputs the parameters of p(x | z).

    Args:
        image_size (`int`, *optional*, defaults to 28):
            Side of the square images in pixels; must be divisible by `2 ** len(block_out_channels)`.
        num_channels (`int`, *optional*, defaults to 1):
            1 (grey) or 3 (RGB).
        latent_dim (`int`, *optional*):
            Size of the latent vector z; defaults to 16. With `spatial_latent` it is the number of latent values,
            `latent_channels * (image_size / f) ** 2` with `f = 2 ** len(block_out_channels)`, derived.
        block_out_channels (`tuple[int]`, *optional*, defaults to `(32, 64)`):
            Channels of each encoder level; each level halves the image side (the decoder mirrors them).
        hidden_dim (`int`, *optional*, defaults to 256):
            Width of the fully connected layer between the feature map and the latent vector.
        likelihood (`str`, *optional*, defaults to `"categorical"`):
            The decoder's distribution p(x | z):
            `"categorical"`: a softmax over the `grey_levels` values of each pixel (a true discrete likelihood);
            `"logistic"`: a discretised logistic over the same levels (2 numbers per pixel, cheaper for 256 levels);
            `"bernoulli"`: for binary data - pixels are binarised at mid-grey before encoding and scoring;
            `"gaussian"`: a density on the [-1, 1] scale, so its NLL is not comparable in bits/dim.
        grey_levels (`int`, *optional*, defaults to 256):
            Distinct intensities of the data per channel (17 for digits, 256 for 8-bit images). A pixel x in
            [-1, 1] is level `round((x + 1) / 2 * (grey_levels - 1))`.
        gaussian_variance (`str`, *optional*, defaults to `"fixed"`):
            `"fixed"` uses `gaussian_std` for every pixel; `"learned"` lets the decoder predict a log-variance.
        gaussian_std (`float`, *optional*, defaults to 0.1):
            Standard deviation of the fixed-variance Gaussian, on the [-1, 1] pixel scale.
        beta (`float`, *optional*, defaults to 1.0):
            Weight of the KL term (beta-VAE, Higgins et al. 2017); 1.0 is the ELBO.
        spatial_latent (`bool`, *optional*, defaults to `False`):
            A fully convolutional VAE whose latent is a feature map of `latent_channels` x (H / f) x (W / f), the
            shape a diffusion UNet can denoise (latent diffusion). Off: a vector through `hidden_dim` (unused on).
        latent_channels (`int`, *optional*, defaults to 4):
            Channels of the spatial latent (Stable Diffusion's VAE has 4).
        scaling_factor (`float`, *optional*, defaults to 1.0):
            Latents are multiplied by it before a diffusion model sees them, so they have unit variance (Stable
            Diffusion's 0.18215); `hfgen train latent-diffusion` measures it on its training set (1 / std).
        latent_mixture_components (`int`, *optional*, defaults to 0):
            Components of a Gaussian mixture over the latent, fitted to the training set's posterior means after
            training (`LatentMixture`; Ghosh et al. 2020) and drawn from with `pipe(latent_sampler="mixture")`. 0: none.
            Vector latents only (full covariances of a feature map's thousands of values would not fit).
        layout (`str`, *optional*, defaults to `"hfgen"`):
            `"hfgen"`: SiLU, a 3x3 convolution from the image to the first level and from the last level to p(x | z).
            `"beta_vae"`: the conv VAE of Higgins et al. 2017 (Table 1, 3D chairs) as disentanglement_lib builds it -
            ReLU, the first strided convolution reads the image and the last transposed one writes p(x | z)'s
            parameters; with `block_out_channels=(32, 32, 64, 64)`, `hidden_dim=256` at 64x64 it is that network.

    Example:
    ```py
    >>> from hfgen import VAEConfig, VAEModel
    >>> config = VAEConfig(image_size=8, grey_levels=17, latent_dim=8)
    >>> model = VAEModel(config)
    >>> model.sample(4).shape
    torch.Size([4, 1, 8, 8])
    >>> VAEConfig(image_size=8, grey_levels=17, block_out_channels=(32,), spatial_latent=True, latent_channels=2).latent_shape
    (2, 4, 4)
    ```
    """

    model_type = "hfgen_vae"

    def __init__(
        self,
        image_size: int = 28,
        num_channels: int = 1,
        latent_dim: int | None = None,
        block_out_channels: tuple[int, ...] | list[int] = (32, 64),
        hidden_dim: int = 256,
        likelihood: Likelihood = "categorical",
        grey_levels: int = 256,
        gaussian_variance: Literal["fixed", "learned"] = "fixed",
        gaussian_std: float = 0.1,
        beta: float = 1.0,
        spatial_latent: bool = False,
        latent_channels: int = 4,
        scaling_factor: float = 1.0,
        layout: Layout = "hfgen",
        latent_mixture_components: int = 0,
        **kwargs,
    ) -> None:
        block_out_channels = tuple(block_out_channels)
        if num_channels not in (1, 3):
            raise ValueError(f"num_channels must be 1 (grey) or 3 (RGB), got {num_channels}.")
        if not block_out_channels or min(block_out_channels) <= 0:
            raise ValueError(f"block_out_channels must be a non-empty list of positive sizes, got {list(block_out_channels)}.")
        factor = 2 ** len(block_out_channels)
        if image_size <= 0 or image_size % factor:
            raise ValueError(
                f"image_size {image_size} is not divisible by 2 ** {len(block_out_channels)} = {factor} (one halving per "
                f"entry of block_out_channels {list(block_out_channels)}): use fewer levels or another image size."
            )
        for name, value in {"hidden_dim": hidden_dim, "latent_channels": latent_channels, "scaling_factor": scaling_factor}.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}.")
        if spatial_latent:
            spatial_size = latent_channels * (image_size // factor) ** 2
            if latent_dim not in (None, spatial_size):
                raise ValueError(
                    f"latent_dim {latent_dim} contradicts the spatial latent {latent_channels} x {image_size // factor} x "
                    f"{image_size // factor} = {spatial_size}: drop latent_dim (it is derived) or change latent_channels."
                )
            latent_dim = spatial_size
        elif latent_dim is None:
            latent_dim = 16
        if latent_dim <= 0:
            raise ValueError(f"latent_dim must be positive, got {latent_dim}.")
        if likelihood not in ("categorical", "logistic", "bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'categorical', 'logistic', 'bernoulli' or 'gaussian', got {likelihood!r}.")
        if grey_levels < 2:
            raise ValueError(f"grey_levels must be at least 2, got {grey_levels}.")
        if gaussian_variance not in ("fixed", "learned"):
            raise ValueError(f"gaussian_variance must be 'fixed' or 'learned', got {gaussian_variance!r}.")
        if gaussian_std <= 0:
            raise ValueError(f"gaussian_std must be positive, got {gaussian_std}.")
        if layout not in ("hfgen", "beta_vae"):
            raise ValueError(f"layout must be 'hfgen' or 'beta_vae', got {layout!r}.")
        if beta < 0:
            raise ValueError(f"beta must be >= 0 (1.0 is the plain ELBO), got {beta}.")
        if latent_mixture_components < 0 or (latent_mixture_components and spatial_latent):
            raise ValueError(
                f"latent_mixture_components must be >= 0, and 0 with a spatial latent, got {latent_mixture_components}: "
                "a mixture is fitted over a vector latent."
            )
        self.image_size = image_size
        self.num_channels = num_channels
        self.latent_dim = latent_dim
        self.block_out_channels = list(block_out_channels)
        self.hidden_dim = hidden_dim
        self.likelihood = likelihood
        self.grey_levels = grey_levels
        self.gaussian_variance = gaussian_variance
        self.gaussian_std = gaussian_std
        self.beta = beta
        self.spatial_latent = spatial_latent
        self.latent_channels = latent_channels
        self.scaling_factor = scaling_factor
        self.layout = layout
        self.latent_mixture_components = latent_mixture_components
        super().__init__(**kwargs)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent: (latent_dim,), or (latent_channels, H / f, W / f) with `spatial_latent`."""
        if not self.spatial_latent:
            return (self.latent_dim,)
        side = self.image_size // 2 ** len(self.block_out_channels)
        return (self.latent_channels, side, side)

    @property
    def parameters_per_pixel(self) -> int:
        """Decoder outputs per pixel and channel: logits, (mean, log-scale) or (mean, log-variance)."""
        if self.likelihood == "categorical":
            return self.grey_levels
        if self.likelihood == "logistic" or (self.likelihood == "gaussian" and self.gaussian_variance == "learned"):
            return 2
        return 1
