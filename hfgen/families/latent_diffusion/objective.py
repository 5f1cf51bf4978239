"""Latent diffusion objective: DDPM's loss (the diffusion family's) on a frozen spatial VAE's scaled latents."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import datasets
import torch
from torch import nn

from ...arguments import DataArguments
from ...data.shards import MEASURE_ROWS
from ...loading import read_model_file
from ...objective import ObjectiveOutput, PreparedModules
from ...randomness import SampleRandomness
from ..diffusion.objective import DiffusionArguments, DiffusionObjective
from ..vae import VAEConfig, VAEModel
from ..vae.objective import ENCODE_BATCH
from .pipeline_latent_diffusion import LatentDiffusionPipeline, check_latent_unet


@dataclass
class LatentDiffusionArguments(DiffusionArguments):
    """The UNet and noise schedule (as for pixel diffusion), plus the autoencoder whose latent it denoises."""

    vae: str | None = field(
        default=None, metadata={"help": "Folder or Hub repo of a spatial-latent VAE (`hfgen train vae --spatial_latent`)."}
    )
    cache_latents: bool = field(
        default=True,
        metadata={"help": "Encode the training set once and keep q(z|x)'s mean and std (faster); off: encode each batch."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.vae:
            raise ValueError(
                "Latent diffusion denoises the latent of a trained autoencoder: pass --vae PATH_OR_REPO, e.g. train one "
                "first with `hfgen train vae --spatial_latent --block_out_channels 32 --latent_channels 4 --output_dir out/vae-spatial`."
            )

    def check_data(self, data: DataArguments) -> None:
        """Cached latents are encoded once, from each image's center crop: a flip would never reach them, and a
        streamed training set is never held whole to encode."""
        if self.cache_latents and data.streaming:
            raise ValueError("--streaming never holds the whole training set to encode it once: add --cache_latents false.")
        if self.cache_latents and data.random_flip:
            raise ValueError("--random_flip changes each image every step, but cached latents are encoded once: add --cache_latents false.")


def load_vae(path: str) -> VAEModel:
    """The hfgen VAE at `path`: a folder (or Hub repo) written by `hfgen train vae` or `hfgen train
    latent-diffusion` (its `vae/` component), or a bare `VAEModel` folder - safetensors only."""
    for subfolder in ("vae", ""):
        config = read_model_file(path, f"{subfolder}/config.json" if subfolder else "config.json")
        if config is not None and config.get("model_type") == VAEConfig.model_type:
            vae = VAEModel.from_pretrained(path, subfolder=subfolder, use_safetensors=True)
            break
    else:
        raise ValueError(
            f"--vae {path!r} holds no hfgen VAE (no config.json of model_type {VAEConfig.model_type!r} in it or its vae/ "
            "folder): pass a folder written by `hfgen train vae --spatial_latent ...`."
        )
    if not vae.config.spatial_latent:
        raise ValueError(
            f"--vae {path!r} has a vector latent ({vae.config.latent_dim} numbers), but a UNet denoises a feature map: "
            "train one with `hfgen train vae --spatial_latent --latent_channels 4 ...` and pass that."
        )
    return vae.requires_grad_(False).eval()


class LatentDiffusionObjective(DiffusionObjective):
    """Rombach et al. (2022): z ~ q(z | x) of a frozen VAE, scaled to unit variance, trained with DDPM's loss.

    The scale factor (Stable Diffusion's 0.18215) is 1 / std of the training set's latents (with --streaming, of
    `MEASURE_ROWS` of them), computed exactly from the posteriors' means and variances and saved as the VAE
    config's `scaling_factor`.
    """

    def __init__(self, arguments: LatentDiffusionArguments, data: DataArguments) -> None:
        arguments.check_data(data)
        self.vae = load_vae(arguments.vae)
        config = self.vae.config
        # The data defaults to the VAE's image shape; a different one given explicitly is a mismatch.
        data = dataclasses.replace(data, resolution=data.resolution or config.image_size, channels=data.channels or config.num_channels)
        super().__init__(arguments, data)
        if (self.info.resolution, self.info.channels) != (config.image_size, config.num_channels):
            raise ValueError(
                f"The VAE takes {config.num_channels}-channel {config.image_size}x{config.image_size} images but the data is "
                f"{self.info.channels}-channel {self.info.resolution}x{self.info.resolution}: drop --resolution/--channels "
                "or pass a VAE trained on this data."
            )
        self.posteriors = self._encode_training_set()
        mean, std = self.posteriors["latent_mean"], self.posteriors["latent_std"]  # (N, Z) each
        variance = (mean.square() + std.square()).mean() - mean.mean().square()  # Var[z] over images and dims
        config.scaling_factor = variance.rsqrt().item()

    @torch.no_grad()
    def _encode_training_set(self) -> dict[str, torch.Tensor]:
        """q(z | x) of every training image (a sample when streamed): latent_mean and latent_std (N, Z), and labels
        (N,) when labelled."""
        images = super().train_dataset()
        if self.data.streaming:
            images = self.dataset.sample(MEASURE_ROWS).with_transform(images.transform)
        means, stds, labels = [], [], []
        for start in range(0, len(images), ENCODE_BATCH):
            batch = images[start : start + ENCODE_BATCH]
            posterior = self.vae.encode(batch["pixel_values"])
            means.append(posterior.mean)
            stds.append(posterior.std)
            labels += [batch["labels"]] if "labels" in batch else []
        return {"latent_mean": torch.cat(means), "latent_std": torch.cat(stds)} | ({"labels": torch.cat(labels)} if labels else {})

    def denoised_shape(self) -> tuple[int, int]:
        channels, side, _ = self.vae.config.latent_shape
        return channels, side

    def build_modules(self) -> dict[str, nn.Module]:
        modules = super().build_modules()
        check_latent_unet(self.vae, modules["unet"])  # a --unet_config that does not fit the latent fails here, not at save
        return modules

    def train_dataset(self) -> datasets.Dataset:
        if not self.arguments.cache_latents:
            return super().train_dataset()  # pixel_values, encoded batch by batch in compute_loss
        size = self.vae.config.latent_dim
        features = {name: datasets.List(datasets.Value("float32"), length=size) for name in ("latent_mean", "latent_std")}
        if "labels" in self.posteriors:
            features["labels"] = datasets.Value("int64")
        columns = {name: values.numpy() for name, values in self.posteriors.items()}
        return datasets.Dataset.from_dict(columns, features=datasets.Features(features)).with_format("torch")

    def compute_loss(
        self, phase: str, batch: dict[str, torch.Tensor], modules: PreparedModules, randomness: SampleRandomness
    ) -> ObjectiveOutput:
        if self.arguments.cache_latents:
            mean, std = batch["latent_mean"], batch["latent_std"]  # (B, Z)
        else:
            with torch.no_grad():
                posterior = self.vae.to(batch["pixel_values"].device).encode(batch["pixel_values"])
            mean, std = posterior.mean, posterior.std
        config = self.vae.config
        noise = randomness.normal("latent", mean.shape[1:], mean.dtype)
        latents = (mean + std * noise) * config.scaling_factor  # z ~ q(z | x), unit variance
        return self.denoising_loss(latents.view(-1, *config.latent_shape), batch.get("labels"), modules["unet"], randomness)

    def pipeline(self, unet: nn.Module) -> LatentDiffusionPipeline:
        return LatentDiffusionPipeline(vae=self.vae.to(unet.device), unet=unet, scheduler=self.scheduler)

    def save_pretrained(self, modules: Mapping[str, nn.Module], output_dir: str | os.PathLike) -> None:
        """The pipeline with DPM-Solver++ as its scheduler (20 steps suit it) and the VAE with its measured scale."""
        pipe = self.pipeline(modules["unet"])
        pipe.use_scheduler("dpmsolver")
        pipe.save_pretrained(output_dir, safe_serialization=True)
