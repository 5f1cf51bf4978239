"""GAN sampling: latent z ~ N(0, I) -> generator -> image, in one forward pass; plus walks through the latent space."""

from __future__ import annotations

import torch
from diffusers import ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor

from ...call_checks import check_bool, check_float, check_generator, check_int, check_latents, check_output_type
from ...images import OutputType, postprocess
from ...labels import batch_and_class_labels, class_label_tensor
from ...pipeline_base import HfgenPipeline
from .modeling_gan import GANDiscriminator, GANGenerator


def slerp(start: torch.Tensor, end: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of (D,) latents at weights (F,) -> (F, D): Gaussian latents keep their typical norm,
    where a straight line would pass through unlikely, too-short latents near the origin."""
    cos = torch.dot(start / start.norm(), end / end.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:  # (nearly) parallel: the straight line is the arc
        return torch.lerp(start, end, weights[:, None])
    a = torch.sin((1 - weights) * omega) / torch.sin(omega)  # (F,)
    b = torch.sin(weights * omega) / torch.sin(omega)
    return a[:, None] * start + b[:, None] * end


class GANPipeline(HfgenPipeline):
    r"""Samples images from a GAN generator; keeps the discriminator beside it for resuming and fine-tuning.

    The generator is registered as `gan_generator` because every pipeline call already takes a `generator=`
    (the `torch.Generator` that makes sampling deterministic). The discriminator is optional: sampling never
    needs it, but saving it means training can continue from the Hub folder.

    Example:
    ```py
    >>> from hfgen import GANPipeline
    >>> pipe = GANPipeline.from_pretrained("out/gan-digits")
    >>> images = pipe(batch_size=16, generator=torch.manual_seed(0), truncation=0.7).images
    >>> walk = pipe.interpolate(pipe.prepare_latents(1, torch.manual_seed(1))[0],
    ...                         pipe.prepare_latents(1, torch.manual_seed(2))[0], num_frames=8).images
    ```
    """

    model_cpu_offload_seq = "gan_generator"
    _optional_components = ["discriminator"]

    def __init__(self, gan_generator: GANGenerator, discriminator: GANDiscriminator | None = None) -> None:
        super().__init__()
        self.register_modules(gan_generator=gan_generator, discriminator=discriminator)

    @property
    def latent_dim(self) -> int:
        return self.gan_generator.config.latent_dim

    @property
    def num_classes(self) -> int | None:
        """Classes the generator is conditioned on (None when unconditional)."""
        return self.gan_generator.config.num_classes

    def prepare_latents(self, batch_size: int, generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        """(batch_size, latent_dim) draws of z ~ N(0, I); the same generator seed gives the same latents."""
        check_int("batch_size", batch_size)
        check_generator(generator, batch_size)
        return randn_tensor(
            (batch_size, self.latent_dim), generator=generator, device=self._execution_device, dtype=self.gan_generator.dtype
        )

    def bytes_per_image(self) -> int:
        """A lower bound on what one image takes, in float32: its latent, and the image as generated and converted."""
        config = self.gan_generator.config
        return 4 * (config.latent_dim + 3 * config.num_channels * config.image_size**2)

    def _class_labels(self, class_labels: int | list[int] | torch.Tensor | None, batch_size: int) -> torch.Tensor | None:
        """One label, or one per image -> (batch_size,) long tensor; a conditional model given none cycles through
        its classes, so a grid reads class by class."""
        num_classes = self.num_classes
        if class_labels is None:
            return None if num_classes is None else torch.arange(batch_size, device=self._execution_device) % num_classes
        return class_label_tensor(class_labels, batch_size, num_classes, self._execution_device)

    def _generate(
        self,
        latents: torch.Tensor,
        class_labels: int | list[int] | torch.Tensor | None,
        truncation: float | None,
        output_type: OutputType,
        return_dict: bool,
    ) -> ImagePipelineOutput | tuple:
        # 1. truncation trick: pull z towards the mean of its prior (0), trading variety for fidelity
        if truncation is not None:
            latents = latents * truncation
        # 2. one generator pass: latent -> image in [-1, 1]
        labels = self._class_labels(class_labels, latents.shape[0])
        images = self.gan_generator(latents.to(self.gan_generator.dtype), class_labels=labels).sample
        images = postprocess(images, output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        class_labels: int | list[int] | torch.Tensor | None = None,
        truncation: float | None = None,
        num_images_per_prompt: int = 1,
        latents: torch.Tensor | None = None,
        output_type: OutputType = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        r"""
        Args:
            batch_size (`int`, *optional*): images to generate; defaults to one per class label, else 1.
            generator (`torch.Generator`, *optional*): makes generation deterministic.
            class_labels (`int`, `list[int]` or `torch.Tensor`, *optional*): class per image (conditional models);
                by default a conditional model cycles through its classes.
            truncation (`float`, *optional*): in (0, 1]; scales z towards 0 for typical-looking samples.
            num_images_per_prompt (`int`, *optional*, defaults to 1): images per label (or per `batch_size` slot).
            latents (`torch.Tensor` of shape `(images, latent_dim)`, *optional*): use these instead of drawing.
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"` or `"pt"` (in [0, 1]).
            return_dict (`bool`, *optional*, defaults to `True`): return an `ImagePipelineOutput`, else a tuple.
        """
        check_output_arguments(self, truncation, output_type, return_dict)
        batch_size, labels = batch_and_class_labels(
            batch_size, class_labels, self.num_classes, num_images_per_prompt, self._execution_device, self.bytes_per_image()
        )
        check_generator(generator, batch_size)
        draw = f"draw them with pipe.prepare_latents({batch_size}, generator)"
        check_latents(latents, (batch_size, self.latent_dim), draw, "(batch_size, latent_dim) = ")
        if latents is None:
            latents = self.prepare_latents(batch_size, generator)
        return self._generate(latents.to(self._execution_device), labels, truncation, output_type, return_dict)

    @torch.no_grad()
    def interpolate(
        self,
        start: torch.Tensor,
        end: torch.Tensor,
        num_frames: int = 8,
        class_labels: int | list[int] | torch.Tensor | None = None,
        truncation: float | None = None,
        output_type: OutputType = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        r"""A latent walk: `num_frames` images along the great-circle arc from latent `start` to latent `end`.

        Args:
            start, end (`torch.Tensor` of shape `(latent_dim,)`): the two ends, e.g. from `prepare_latents`.
            num_frames (`int`, *optional*, defaults to 8): frames in the strip, both ends included (at least 2).
            class_labels (`int` or `list[int]`, *optional*): one class for the whole walk, or one per frame.
            truncation (`float`, *optional*): as in `__call__`.
        """
        check_output_arguments(self, truncation, output_type, return_dict)
        check_int("num_frames", num_frames, minimum=2)
        for name, latent in (("start", start), ("end", end)):
            if latent.shape != (self.latent_dim,):
                raise ValueError(
                    f"{name} must be one latent of shape ({self.latent_dim},), got {tuple(latent.shape)}: "
                    "take a row of pipe.prepare_latents(1, generator)."
                )
        if class_labels is None and self.gan_generator.config.num_classes is not None:
            class_labels = 0  # one class for the whole walk, so only the latent changes along it
        weights = torch.linspace(0, 1, num_frames, device=self._execution_device)
        start, end = start.to(self._execution_device).float(), end.to(self._execution_device).float()
        latents = slerp(start, end, weights)  # (num_frames, latent_dim)
        return self._generate(latents, class_labels, truncation, output_type, return_dict)


def check_output_arguments(pipe: GANPipeline, truncation: object, output_type: object, return_dict: object) -> None:
    """The arguments `__call__` and `interpolate` share, checked before the generator runs."""
    check_float("truncation", truncation, 0.0, 1.0, above_minimum=True, optional=True, meaning="1 = no truncation, smaller = closer to the average")
    check_output_type(output_type, False, pipe)
    check_bool("return_dict", return_dict)
