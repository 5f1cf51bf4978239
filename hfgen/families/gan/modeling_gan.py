"""DCGAN-style networks (Radford et al. 2016) as transformers models: noise -> generator -> image -> discriminator.

Read top to bottom: outputs -> building blocks -> the shared base class -> generator -> discriminator. Both
networks are sized from one `GANConfig`, so a pair saved side by side always matches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrize import ParametrizationList
from torch.nn.utils.parametrizations import _SpectralNorm, spectral_norm
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_gan import GANConfig, Norm


@dataclass
class GANGeneratorOutput(ModelOutput):
    """
    Args:
        sample (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`):
            Generated images in [-1, 1].
    """

    sample: torch.FloatTensor | None = None


@dataclass
class GANDiscriminatorOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` are given):
            Binary cross-entropy of the logits against the real (1) / fake (0) labels.
        logits (`torch.FloatTensor` of shape `(batch_size,)`):
            Realness scores before any sigmoid: positive means "looks real".
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # one group: normalise over (C, H, W) of each sample, like LayerNorm
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def _check_class_labels(config: GANConfig, class_labels: torch.Tensor | None, batch_size: int) -> None:
    """Conditional networks need one label per sample in [0, num_classes); unconditional ones take none."""
    if config.num_classes is None:
        if class_labels is not None:
            raise ValueError("class_labels were given but this GAN is unconditional (num_classes=None): drop class_labels.")
        return
    if class_labels is None:
        raise ValueError(f"This GAN is class-conditional ({config.num_classes} classes): pass class_labels.")
    if class_labels.shape != (batch_size,):
        raise ValueError(f"class_labels must have shape ({batch_size},), one per sample; got {tuple(class_labels.shape)}.")
    if class_labels.min() < 0 or class_labels.max() >= config.num_classes:
        raise ValueError(f"class_labels must be in [0, {config.num_classes - 1}], got {class_labels.tolist()}.")


class GANPreTrainedModel(PreTrainedModel):
    """Shared contract of both networks: one config class and DCGAN's initialisation."""

    config_class = GANConfig
    base_model_prefix = "gan"

    def _init_weights(self, module: nn.Module) -> None:
        # transformers calls this for every module whose own tensors a checkpoint lacks (they hold uninitialised
        # memory until then), so together the branches set every parameter and buffer; `init.*` skips loaded ones.
        if isinstance(module, ParametrizationList):
            # A spectrally normalised layer's weight lives here, as `original`; spectral norm divides its scale away
            # (W / sigma), so one std serves every layer type.
            init.normal_(module.original, std=self.config.initializer_range)
        elif isinstance(module, nn.Embedding) and not parametrize.is_parametrized(module):
            init.normal_(module.weight, std=1.0)  # class codes on the scale of z ~ N(0, I)
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if not parametrize.is_parametrized(module):
                init.normal_(module.weight, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm2d):
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)

    @torch.no_grad()
    def initialize_weights(self) -> None:
        """transformers' per-module initialisation, then spectral norm's singular-vector estimates (`_u`, `_v`), which
        depend on a weight that is final only once every module is done."""
        super().initialize_weights()
        for module in self.modules():
            if isinstance(module, ParametrizationList):
                for parametrization in module:
                    if isinstance(parametrization, _SpectralNorm):
                        _restart_power_iteration(parametrization, module.original)


@torch.no_grad()
def _restart_power_iteration(norm: _SpectralNorm, weight: torch.Tensor) -> None:
    """Start `_u`, `_v` afresh from `weight` as torch does when it wraps a layer (random unit vectors, then 15 power
    iterations), unless a checkpoint gave them."""
    if getattr(norm._u, "_is_hf_initialized", False) and getattr(norm._v, "_is_hf_initialized", False):
        return
    for vector in (norm._u, norm._v):
        vector.normal_()
        vector.copy_(F.normalize(vector, dim=0, eps=norm.eps))
    norm._power_method(norm._reshape_weight_to_matrix(weight), 15)


class GANGenerator(GANPreTrainedModel):
    """z (+ class embedding) -> linear to a small map -> (transposed conv 4x4 stride 2 -> norm -> ReLU)* -> tanh."""

    main_input_name = "latents"

    def __init__(self, config: GANConfig) -> None:
        super().__init__(config)
        dcgan = config.layout == "dcgan"
        sizes = config.resolutions[::-1]  # e.g. [7, 14, 28]
        # Feature maps at every rung (hfgen: a 3x3 conv then writes the image) or below the image's (dcgan: the
        # last transposed conv writes it).
        maps = sizes[:-1] if dcgan else sizes
        widths = [max(config.generator_channels // 2**i, 16) for i in range(len(maps))]
        self.base_channels = widths[0]
        self.class_embedding = nn.Embedding(config.num_classes, config.latent_dim) if config.num_classes else None
        in_features = config.latent_dim * (2 if config.num_classes else 1)
        self.project = nn.Linear(in_features, widths[0] * config.base_size**2, bias=not dcgan)
        self.project_norm = _norm(config.generator_norm, widths[0])
        bias = config.generator_norm == "none" and not dcgan  # a norm's shift makes a conv bias redundant
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(widths[i], widths[i + 1], kernel_size=4, stride=2, padding=1, bias=bias),
                _norm(config.generator_norm, widths[i + 1]),
                nn.ReLU(),
            )
            for i in range(len(maps) - 1)
        )
        if dcgan:
            self.to_image = nn.ConvTranspose2d(widths[-1], config.num_channels, kernel_size=4, stride=2, padding=1, bias=False)
        else:
            self.to_image = nn.Conv2d(widths[-1], config.num_channels, kernel_size=3, padding=1)
        self.post_init()

    def forward(
        self, latents: torch.Tensor, class_labels: torch.Tensor | None = None, return_dict: bool = True
    ) -> GANGeneratorOutput | tuple:
        r"""
        Args:
            latents (`torch.FloatTensor` of shape `(batch_size, latent_dim)`): points of the latent space.
            class_labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*): classes, for conditional models.
        """
        if latents.ndim != 2 or latents.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"latents must have shape (batch_size, {self.config.latent_dim}) for this generator, "
                f"got {tuple(latents.shape)}: draw them with latent_dim={self.config.latent_dim}."
            )
        _check_class_labels(self.config, class_labels, latents.shape[0])
        inputs = latents
        if self.class_embedding is not None:
            inputs = torch.cat([latents, self.class_embedding(class_labels)], dim=1)  # (B, 2 * latent_dim)
        size = self.config.base_size
        hidden = self.project(inputs).view(-1, self.base_channels, size, size)  # (B, C0, s0, s0)
        hidden = F.relu(self.project_norm(hidden))
        for block in self.blocks:
            hidden = block(hidden)  # (B, C / 2, 2 H, 2 W)
        sample = torch.tanh(self.to_image(hidden))  # (B, num_channels, image_size, image_size)
        return GANGeneratorOutput(sample=sample) if return_dict else (sample,)


class GANDiscriminator(GANPreTrainedModel):
    """image -> conv 3x3 -> (conv 4x4 stride 2 -> norm -> LeakyReLU)* -> linear logit (+ class projection)."""

    main_input_name = "pixel_values"

    def __init__(self, config: GANConfig) -> None:
        super().__init__(config)
        sn = spectral_norm if config.spectral_norm else (lambda module: module)
        dcgan = config.layout == "dcgan"
        sizes = config.resolutions  # e.g. [28, 14, 7]
        # Feature maps at every rung (hfgen: a 3x3 conv reads the image) or below the image's (dcgan: the first
        # strided conv reads it).
        maps = sizes[1:] if dcgan else sizes
        widths = [config.discriminator_channels * 2**i for i in range(len(maps))]
        if dcgan:
            self.from_image = sn(nn.Conv2d(config.num_channels, widths[0], kernel_size=4, stride=2, padding=1, bias=False))
        else:
            self.from_image = sn(nn.Conv2d(config.num_channels, widths[0], kernel_size=3, padding=1))
        bias = config.discriminator_norm == "none" and not dcgan
        self.blocks = nn.ModuleList(
            nn.Sequential(
                sn(nn.Conv2d(widths[i], widths[i + 1], kernel_size=4, stride=2, padding=1, bias=bias)),
                _norm(config.discriminator_norm, widths[i + 1]),
                nn.LeakyReLU(0.2),
            )
            for i in range(len(maps) - 1)
        )
        features = widths[-1] * config.base_size**2
        # dcgan: its last 4x4 valid convolution over the 4x4 map, which is this linear layer without bias.
        self.to_logit = sn(nn.Linear(features, 1, bias=not dcgan))
        # Projection discriminator: logit += <embed(y), features>, i.e. an inner product with the class code.
        self.class_projection = sn(nn.Embedding(config.num_classes, features)) if config.num_classes else None
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> GANDiscriminatorOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`):
                Images in [-1, 1].
            class_labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*): classes, for conditional models.
            labels (`torch.Tensor` of shape `(batch_size,)`, *optional*): 1 for real, 0 for fake; gives `loss`.
        """
        expected = (self.config.num_channels, self.config.image_size, self.config.image_size)
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ValueError(
                f"pixel_values must have shape (batch_size, {', '.join(map(str, expected))}) for this discriminator, "
                f"got {tuple(pixel_values.shape)}: resize the images to {self.config.image_size} pixels."
            )
        _check_class_labels(self.config, class_labels, pixel_values.shape[0])
        hidden = F.leaky_relu(self.from_image(pixel_values), 0.2)  # (B, C, H, W)
        for block in self.blocks:
            hidden = block(hidden)  # (B, 2 C, H / 2, W / 2)
        features = hidden.flatten(1)  # (B, C_last * s0 * s0)
        logits = self.to_logit(features).squeeze(1)  # (B,)
        if self.class_projection is not None:
            logits = logits + (self.class_projection(class_labels) * features).sum(dim=1)
        loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype)) if labels is not None else None
        if not return_dict:
            return (logits,) if loss is None else (loss, logits)
        return GANDiscriminatorOutput(loss=loss, logits=logits)
