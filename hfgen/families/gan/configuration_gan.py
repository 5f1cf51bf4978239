"""GANConfig: every hyperparameter of the generator and the discriminator, saved with each network."""

from __future__ import annotations

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

Norm = Literal["batch", "layer", "none"]
NORMS = ("batch", "layer", "none")
Layout = Literal["hfgen", "dcgan"]
LAYOUTS = ("hfgen", "dcgan")


@strict
class GANConfig(PreTrainedConfig):
    r"""
    Configuration of a DCGAN-style [`GANGenerator`] and [`GANDiscriminator`]; both networks share it, so one
    config.json describes the pair and loading never needs the training options again.

    The networks work on a ladder of resolutions: the image side is halved while it stays even and at least 4
    (8 -> 4, 28 -> 14 -> 7, 32 -> 16 -> 8 -> 4). The generator starts from a `base_size` x `base_size` map and
    doubles it once per rung; the discriminator walks down the same ladder.

    Args:
        latent_dim (`int`, *optional*, defaults to 64):
            Size of the latent vector z ~ N(0, I) the generator turns into an image.
        image_size (`int`, *optional*, defaults to 8):
            Side of the square images, in pixels.
        num_channels (`int`, *optional*, defaults to 1):
            Image channels: 1 (grey) or 3 (RGB).
        generator_channels (`int`, *optional*, defaults to 128):
            Generator width at the smallest feature map; it halves at each upsampling (never below 16).
        discriminator_channels (`int`, *optional*, defaults to 64):
            Discriminator width at full resolution; it doubles at each downsampling.
        num_classes (`int`, *optional*):
            Classes to condition on: a class embedding joins z in the generator and the discriminator adds a
            projection term (Miyato & Koyama 2018). `None` makes both unconditional.
        generator_norm (`str`, *optional*, defaults to `"batch"`):
            Normalisation in the generator: `"batch"` (DCGAN), `"layer"` (GroupNorm with one group) or `"none"`.
        discriminator_norm (`str`, *optional*, defaults to `"none"`):
            Normalisation in the discriminator. `"none"` suits spectral normalisation and gradient penalties, which
            need each sample's score to depend on that sample alone; `"batch"` is the original DCGAN.
        spectral_norm (`bool`, *optional*, defaults to `True`):
            Spectral normalisation of every discriminator weight (Miyato et al. 2018): bounds its Lipschitz
            constant, the simplest stabiliser.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal init of weights that are not spectrally normalised (DCGAN's 0.02).
        layout (`str`, *optional*, defaults to `"hfgen"`):
            Where the image meets the ladder. `"hfgen"`: a 3x3 convolution at full resolution into the discriminator
            and out of the generator, a biased linear projection of z and a biased linear logit. `"dcgan"`: the
            stack of Radford et al. 2016 as in PyTorch's DCGAN example - the generator's last 4x4 transposed
            convolution writes the image, the discriminator's first strided 4x4 convolution reads it, and no layer
            has a bias; at 64x64 with `generator_channels=512`, `discriminator_channels=64` and batch norm these
            are its networks exactly (the projection of z is its 4x4 transposed convolution of a 1x1 map).

    Example:
    ```py
    >>> from hfgen import GANConfig, GANGenerator
    >>> config = GANConfig(image_size=28, num_classes=10)
    >>> GANGenerator(config)(torch.randn(4, config.latent_dim), class_labels=torch.arange(4)).sample.shape
    torch.Size([4, 1, 28, 28])
    ```
    """

    model_type = "hfgen_gan"

    latent_dim: int = 64
    image_size: int = 8
    num_channels: int = 1
    generator_channels: int = 128
    discriminator_channels: int = 64
    num_classes: int | None = None
    generator_norm: Norm = "batch"
    discriminator_norm: Norm = "none"
    spectral_norm: bool = True
    initializer_range: float = 0.02
    layout: Layout = "hfgen"

    def __post_init__(self, **kwargs) -> None:
        positive = {
            "latent_dim": self.latent_dim,
            "image_size": self.image_size,
            "generator_channels": self.generator_channels,
            "discriminator_channels": self.discriminator_channels,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"GANConfig.{name} must be a positive integer, got {value!r}.")
        if self.num_channels not in (1, 3):
            raise ValueError(f"GANConfig.num_channels must be 1 (grey) or 3 (RGB), got {self.num_channels!r}.")
        if self.num_classes is not None and self.num_classes < 2:
            raise ValueError(f"GANConfig.num_classes must be None (unconditional) or at least 2, got {self.num_classes!r}.")
        if self.layout not in LAYOUTS:
            raise ValueError(f"GANConfig.layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}.")
        for name in ("generator_norm", "discriminator_norm"):
            if getattr(self, name) not in NORMS:
                raise ValueError(f"GANConfig.{name} must be one of {', '.join(NORMS)}, got {getattr(self, name)!r}.")
        if self.layout == "dcgan" and len(self.resolutions) < 2:
            raise ValueError(
                f"GANConfig.layout 'dcgan' needs an image side that halves at least once to >= 4, got {self.image_size}: "
                "use layout 'hfgen' or e.g. image_size 64."
            )
        super().__post_init__(**kwargs)

    @property
    def resolutions(self) -> list[int]:
        """The ladder from the image side down to `base_size`, e.g. [28, 14, 7]."""
        sizes = [self.image_size]
        while sizes[-1] % 2 == 0 and sizes[-1] // 2 >= 4:
            sizes.append(sizes[-1] // 2)
        return sizes

    @property
    def base_size(self) -> int:
        return self.resolutions[-1]
