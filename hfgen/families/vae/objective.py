"""VAE objective: maximise the ELBO (reconstruction - beta * KL), with optional KL warm-up and free bits."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import datasets
import torch
from torch import nn

from ...arguments import DataArguments, require_non_negative, require_positive
from ...data import describe_images, images_to_tensor
from ...data.shards import MEASURE_ROWS
from ...data.transforms import image_pixels
from ...objective import Objective, ObjectiveOutput, PreparedModules
from ...randomness import SampleRandomness
from . import VAEConfig, VAEModel, VAEPipeline
from .configuration_vae import Likelihood


MIXTURE_COMPONENTS = 10
"""Components of the latent mixture by default (pythae's GaussianMixtureSampler's)."""
ENCODE_BATCH = 500
"""Images per encoder call when encoding a training set (the latent mixture here, the latent diffusion's cache)."""
VALIDATION_IMAGES = 1000
"""Test images whose ELBO is logged with each sample grid (all 300 digits; the first 1,000 of Fashion-MNIST)."""


@dataclass
class VAEArguments:
    """Build the VAE config (saved with the weights) and set the training-only KL schedule."""

    latent_dim: int | None = field(default=None, metadata={"help": "Size of the latent vector z (default 16; derived with --spatial_latent)."})
    block_out_channels: list[int] | None = field(
        default=None, metadata={"help": "Channels per encoder level, each halving the side (default 32 64)."}
    )
    hidden_dim: int = field(default=256, metadata={"help": "Fully connected width around the latent."})
    likelihood: Likelihood = field(
        default="categorical",
        metadata={"help": "Decoder p(x|z): categorical over grey levels, logistic (discretised), bernoulli (binarised), gaussian."},
    )
    gaussian_variance: Literal["fixed", "learned"] = field(default="fixed", metadata={"help": "Gaussian likelihood: fixed or learned variance."})
    gaussian_std: float = field(default=0.1, metadata={"help": "Fixed Gaussian standard deviation on the [-1, 1] scale."})
    beta: float = field(default=1.0, metadata={"help": "KL weight (beta-VAE); 1.0 trains the ELBO."})
    kl_warmup_steps: int = field(
        default=0, metadata={"help": "Ramp the KL weight linearly from 0 to beta over this many training batches."}
    )
    free_bits: float = field(default=0.0, metadata={"help": "Nats per latent dimension the KL may use unpenalised."})
    spatial_latent: bool = field(
        default=False,
        metadata={"help": "A latent feature map latent_channels x H/f x W/f (f = 2 ** levels) that latent diffusion can denoise."},
    )
    latent_channels: int = field(default=4, metadata={"help": "Channels of the spatial latent (with --spatial_latent)."})
    layout: Literal["hfgen", "beta_vae"] = field(
        default="hfgen", metadata={"help": "hfgen: SiLU, 3x3 convs at the image; beta_vae: Higgins et al.'s conv VAE (VAEConfig)."}
    )
    latent_mixture_components: int | None = field(
        default=None,
        metadata={"help": "Fit a Gaussian mixture of this many components to the training set's codes after training "
                          "(Ghosh et al. 2020), which the pipeline then samples from; 0: none, sample the prior "
                          f"(default: {MIXTURE_COMPONENTS}, pythae's, for a vector latent; none for a spatial one)."},
    )

    def __post_init__(self) -> None:
        if not self.beta >= 0:
            raise ValueError(f"--beta must be >= 0 (1.0 is the plain ELBO), got {self.beta}.")
        require_non_negative(self, "kl_warmup_steps", "free_bits", "latent_mixture_components")
        require_positive(self, "latent_dim", "hidden_dim", "gaussian_std")
        if self.block_out_channels is not None and not all(c > 0 for c in self.block_out_channels):
            raise ValueError(f"--block_out_channels must be positive channel counts, got {self.block_out_channels}.")

    def mixture_components(self, training_images: int | None) -> int:
        """--latent_mixture_components, or its default: a latent density fitted after training halved FID∞ on both
        datasets (docs/evaluation.md, "Training options side by side"); none for a spatial latent (latent diffusion's), nor for a
        set of fewer images than components. Checked before training, so a run never fails at its save."""
        components = self.latent_mixture_components
        if components is None:
            default = 0 if self.spatial_latent else MIXTURE_COMPONENTS
            return default if training_images is None or training_images >= default else 0
        if training_images is not None and training_images < components:
            raise ValueError(
                f"--latent_mixture_components {components} needs at least as many training images, got {training_images}: "
                "lower it (0: sample the prior)."
            )
        return components

    def vae_config(self, image_size: int, num_channels: int, grey_levels: int, training_images: int | None = None) -> VAEConfig:
        """The VAE config these options build for such images (`training_images`: how many, when known)."""
        return VAEConfig(
            image_size=image_size,
            num_channels=num_channels,
            latent_dim=self.latent_dim,
            spatial_latent=self.spatial_latent,
            latent_channels=self.latent_channels,
            hidden_dim=self.hidden_dim,
            likelihood=self.likelihood,
            grey_levels=grey_levels,
            gaussian_variance=self.gaussian_variance,
            gaussian_std=self.gaussian_std,
            beta=self.beta,
            layout=self.layout,
            latent_mixture_components=self.mixture_components(training_images),
            **({"block_out_channels": self.block_out_channels} if self.block_out_channels else {}),
        )


class VAEObjective(Objective):
    """The negative ELBO of Kingma & Welling (2014), beta-weighted (Higgins et al. 2017), with KL warm-up
    (Bowman et al. 2016) and free bits (Kingma et al. 2016) against posterior collapse."""

    ema_modules = ("vae",)
    module_names = ("vae",)

    def __init__(self, arguments: VAEArguments, data: DataArguments) -> None:
        self.arguments = arguments
        self.data = data
        self.dataset = data.load_images("train")
        self.info = describe_images(self.dataset, data.dataset, data.resolution, data.channels)
        known = None if data.streaming else len(self.dataset)
        self.config = arguments.vae_config(self.info.resolution, self.info.channels, self.info.grey_levels, known)

    def build_modules(self) -> dict[str, nn.Module]:
        return {"vae": VAEModel(self.config)}

    def train_dataset(self) -> datasets.Dataset:
        """The images decoded once into a fixed-length uint8 column: a batch then costs ~1 ms to fetch instead of
        ~12 ms of PNG decoding, a quarter of a training step for a network this small. The cache holds each image's
        center crop; --random_flip changes the image every time and --streaming never holds the whole set, so with
        either it decodes each batch (`pixel_values`)."""
        resolution, channels = self.info.resolution, self.info.channels
        if self.data.random_flip or self.data.streaming:
            return self.dataset.with_transform(self.data.image_transform(resolution, channels))

        def to_pixels(batch: dict[str, list]) -> dict[str, torch.Tensor]:
            return {"pixels": image_pixels(batch["image"], resolution, channels).flatten(1)}  # (B, C * H * W) uint8

        features = datasets.Features({"pixels": datasets.List(datasets.Value("uint8"), length=channels * resolution**2)})
        pixels = self.dataset.map(to_pixels, batched=True, remove_columns=self.dataset.column_names, features=features)
        return pixels.with_format("torch")

    def images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C * H * W) uint8 rows of `train_dataset()` -> (B, C, H, W) images in [-1, 1]."""
        side = self.info.resolution
        return pixels.view(-1, self.info.channels, side, side).float() / 127.5 - 1

    def kl_weight(self, step: int) -> float:
        """beta at optimizer step `step` (from 0), ramped linearly from ~0 over the first `kl_warmup_steps` steps."""
        warmup = self.arguments.kl_warmup_steps
        return self.arguments.beta * (min(1.0, (step + 1) / warmup) if warmup else 1.0)

    def compute_loss(
        self, phase: str, batch: dict[str, torch.Tensor], modules: PreparedModules, randomness: SampleRandomness
    ) -> ObjectiveOutput:
        beta = self.kl_weight(randomness.step)
        images = batch["pixel_values"] if "pixel_values" in batch else self.images(batch["pixels"])  # (B, C, H, W)
        output = modules["vae"](images, beta=beta, free_bits=self.arguments.free_bits, generator=randomness.generators("latent"))
        reconstruction, kl = output.reconstruction_loss.detach(), output.kl.detach()
        return ObjectiveOutput(
            output.loss,
            {"reconstruction": reconstruction, "kl": kl, "beta": torch.tensor(beta, device=kl.device), "elbo": -(reconstruction + kl)},
        )

    def samples(self, modules: Mapping[str, nn.Module], num: int, generator: torch.Generator) -> torch.Tensor:
        """Top half: prior samples. Bottom half: a fixed training batch, each original followed by its reconstruction."""
        vae = modules["vae"]
        pairs = num // 4
        if pairs == 0:
            return vae.sample(num, generator)
        originals = images_to_tensor(self.dataset[:pairs]["image"], self.info.resolution, self.info.channels).to(vae.device)
        reconstructions = vae.decode(vae.encode(originals).mean)
        side_by_side = torch.stack([originals, reconstructions], dim=1).flatten(0, 1)  # (2 * pairs, C, H, W)
        return torch.cat([vae.sample(num - 2 * pairs, generator), side_by_side])

    def validation_logs(self, modules: Mapping[str, nn.Module]) -> dict[str, float]:
        """Test-split ELBO in nats and bits/dim (when the dataset has a test split; streamed, only the shards of its
        first VALIDATION_IMAGES rows are read)."""
        try:
            test = self.data.load_images("test")
        except (ValueError, FileNotFoundError):
            return {}
        vae = modules["vae"]
        images = images_to_tensor(test[:VALIDATION_IMAGES]["image"], self.info.resolution, self.info.channels).to(vae.device)
        elbo = torch.cat([vae.elbo(x, torch.Generator(vae.device).manual_seed(0)) for x in images.split(250)]).mean().item()
        return {"validation_elbo": elbo, "validation_elbo_bits_per_dim": -elbo / (vae.num_dimensions * math.log(2))}

    def save_pretrained(self, modules: Mapping[str, nn.Module], output_dir: str | os.PathLike) -> None:
        """The pipeline - with its latent mixture fitted to the training set's codes first, when it has one."""
        vae = modules["vae"]
        if vae.latent_mixture is not None:
            vae.latent_mixture.fit(self._training_codes(vae))
        VAEPipeline(vae=vae).save_pretrained(output_dir, safe_serialization=True)

    @torch.no_grad()
    def _training_codes(self, vae: VAEModel) -> torch.Tensor:
        """(N, Z) posterior means of the training images' center crops (streamed: of `MEASURE_ROWS` of them)."""
        images = self.dataset.sample(MEASURE_ROWS) if self.data.streaming else self.dataset
        codes = []
        for start in range(0, len(images), ENCODE_BATCH):
            pixels = images_to_tensor(images[start : start + ENCODE_BATCH]["image"], self.info.resolution, self.info.channels)
            codes.append(vae.encode(pixels.to(vae.device)).mean.cpu())
        return torch.cat(codes)
