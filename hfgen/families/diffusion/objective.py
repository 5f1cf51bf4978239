"""Diffusion objective: noise an image to a random timestep, regress the noise (epsilon) or v."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import datasets
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.training_utils import compute_snr
from torch import nn

from ...arguments import DataArguments, require_existing, require_in, require_positive
from ...data import describe_images
from ...objective import Objective, ObjectiveOutput, PreparedModules
from ...randomness import SampleRandomness
from . import DiffusionImagePipeline, default_unet_config


@dataclass
class DiffusionArguments:
    """Build the UNet and noise-schedule configs (saved with the model; loading never needs these again)."""

    prediction_type: Literal["epsilon", "v_prediction"] = field(default="epsilon", metadata={"help": "What the UNet predicts."})
    num_train_timesteps: int = 1000
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = field(
        default="linear", metadata={"help": "Noise schedule; linear (DDPM's) is safe under every diffusers sampler."}
    )
    block_out_channels: list[int] | None = field(default=None, metadata={"help": "Channels per UNet level (default by resolution)."})
    layers_per_block: int = 1
    attention_levels: list[int] | None = field(
        default=None, metadata={"help": "UNet levels with self-attention, 0 = full resolution (default: those at 4x4 or less)."}
    )
    attention_head_dim: int = field(default=16, metadata={"help": "Channels per attention head."})
    norm_num_groups: int = field(default=8, metadata={"help": "GroupNorm groups; must divide every level's channels."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout in the UNet's residual blocks (Ho et al.: 0.1 on CIFAR-10)."})
    class_conditional: bool = field(default=False, metadata={"help": "Condition on labels (classifier-free guidance)."})
    condition_dropout: float = field(default=0.1, metadata={"help": "Share of labels replaced by 'no class' in training."})
    unet_config: str | None = field(default=None, metadata={"help": "A UNet2DModel config.json to use instead."})
    grid_inference_steps: int = field(default=20, metadata={"help": "DPM-Solver++ steps for training-time grids."})
    snr_gamma: float | None = field(
        default=None,
        metadata={"help": "Min-SNR-γ loss weighting (Hang et al. 2023; diffusers' --snr_gamma): each timestep's loss "
                          "weighted min(SNR, γ)/SNR (v: /(SNR+1)); 5 is the paper's. Off: the plain mean squared error."},
    )

    def __post_init__(self) -> None:
        require_positive(
            self, "num_train_timesteps", "layers_per_block", "grid_inference_steps", "attention_head_dim", "norm_num_groups",
            "snr_gamma",
        )
        require_in(self, "condition_dropout", 0.0, 1.0, high_open=True)
        require_in(self, "dropout", 0.0, 1.0, high_open=True)
        if self.block_out_channels is not None and not all(c > 0 for c in self.block_out_channels):
            raise ValueError(f"--block_out_channels must be positive channel counts, got {self.block_out_channels}.")
        require_existing("unet_config", self.unet_config, "file")
        if self.unet_config:
            try:
                json.loads(Path(self.unet_config).read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise ValueError(f"--unet_config {self.unet_config!r} is not a JSON config ({error}): pass a UNet2DModel config.json.") from None

    def default_unet_config(self, side: int, channels: int, num_classes: int | None) -> dict:
        """The UNet2DModel config these options build for `channels` x `side` x `side` inputs (labels: `num_classes`)."""
        return default_unet_config(
            side,
            channels,
            num_classes if self.class_conditional else None,
            tuple(self.block_out_channels) if self.block_out_channels else None,
            self.layers_per_block,
            attention_levels=tuple(self.attention_levels) if self.attention_levels is not None else None,
            attention_head_dim=self.attention_head_dim,
            norm_num_groups=self.norm_num_groups,
            dropout=self.dropout,
        )


class DiffusionObjective(Objective):
    """DDPM training (Ho et al. 2020) with epsilon- or v-prediction (Salimans & Ho 2022) and label dropout."""

    ema_modules = ("unet",)
    module_names = ("unet",)

    def __init__(self, arguments: DiffusionArguments, data: DataArguments) -> None:
        self.arguments, self.data = arguments, data
        self.dataset = data.load_images("train")
        self.info = describe_images(self.dataset, data.dataset, data.resolution, data.channels)
        if arguments.class_conditional and self.info.num_classes is None:
            raise ValueError(f"--class_conditional needs labels, but dataset {data.dataset!r} has none: drop the flag.")
        self.scheduler = DDPMScheduler(
            num_train_timesteps=arguments.num_train_timesteps,
            beta_schedule=arguments.beta_schedule,
            prediction_type=arguments.prediction_type,
        )

    def denoised_shape(self) -> tuple[int, int]:
        """(channels, side) of what the UNet denoises: the images themselves (latent diffusion: its latents)."""
        return self.info.channels, self.info.resolution

    def unet_config(self) -> dict:
        if self.arguments.unet_config:
            return json.loads(open(self.arguments.unet_config).read())
        channels, side = self.denoised_shape()
        return self.arguments.default_unet_config(side, channels, self.info.num_classes)

    def build_modules(self) -> dict[str, nn.Module]:
        return {"unet": UNet2DModel.from_config(self.unet_config())}

    def train_dataset(self) -> datasets.Dataset:
        return self.dataset.with_transform(self.data.image_transform(self.info.resolution, self.info.channels))

    def compute_loss(
        self, phase: str, batch: dict[str, torch.Tensor], modules: PreparedModules, randomness: SampleRandomness
    ) -> ObjectiveOutput:
        return self.denoising_loss(batch["pixel_values"], batch.get("labels"), modules["unet"], randomness)  # images in [-1, 1]

    def denoising_loss(
        self, clean: torch.Tensor, labels: torch.Tensor | None, unet: nn.Module, randomness: SampleRandomness
    ) -> ObjectiveOutput:
        """Noise `clean` (B, C, H, W) - images, or latent diffusion's scaled latents - to random timesteps and
        regress the noise (or v) with `unet`."""
        noise = randomness.normal("noise", clean.shape[1:], clean.dtype)
        timesteps = randomness.integers("timestep", self.scheduler.config.num_train_timesteps)  # (B,)
        noisy = self.scheduler.add_noise(clean, noise, timesteps)
        labels = self._dropped_labels(labels, randomness) if self.arguments.class_conditional else None
        prediction = unet(noisy, timesteps, class_labels=labels).sample
        if self.arguments.prediction_type == "epsilon":
            target = noise
        else:
            target = self.scheduler.get_velocity(clean, noise, timesteps)
        if self.arguments.snr_gamma is None:
            return ObjectiveOutput(F.mse_loss(prediction.float(), target.float()))
        per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=tuple(range(1, prediction.dim())))
        return ObjectiveOutput((per_sample * self._min_snr_weights(timesteps)).mean())

    def _min_snr_weights(self, timesteps: torch.Tensor) -> torch.Tensor:
        """(B,) Min-SNR-γ's weights, as diffusers' train_text_to_image.py computes them: min(SNR(t), γ) over what the
        prediction's loss already weighs - SNR(t) for epsilon, SNR(t) + 1 for v."""
        snr = compute_snr(self.scheduler, timesteps)
        clipped = snr.clamp(max=self.arguments.snr_gamma)
        return clipped / snr if self.arguments.prediction_type == "epsilon" else clipped / (snr + 1)

    def _dropped_labels(self, labels: torch.Tensor, randomness: SampleRandomness) -> torch.Tensor:
        """Replace a `condition_dropout` share with the "no class" label so one UNet also learns p(x)."""
        drop = randomness.uniform("label_drop") < self.arguments.condition_dropout
        return torch.where(drop, torch.full_like(labels, self.info.num_classes), labels)

    def pipeline(self, unet: nn.Module) -> DiffusionImagePipeline:
        return DiffusionImagePipeline(unet=unet, scheduler=self.scheduler)

    def samples(self, modules: Mapping[str, nn.Module], num: int, generator: torch.Generator) -> torch.Tensor:
        pipe = self.pipeline(modules["unet"])
        pipe.use_scheduler("dpmsolver")
        pipe.set_progress_bar_config(disable=True)
        # Conditional models show each class in turn, so the grid reads row by row.
        labels = [i % self.info.num_classes for i in range(num)] if self.arguments.class_conditional else None
        return pipe(
            batch_size=num, generator=generator, num_inference_steps=self.arguments.grid_inference_steps,
            class_labels=labels, output_type="pt",
        ).images * 2 - 1

    def save_pretrained(self, modules: Mapping[str, nn.Module], output_dir: str | os.PathLike) -> None:
        self.pipeline(modules["unet"]).save_pretrained(output_dir, safe_serialization=True)
