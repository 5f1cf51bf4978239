"""Walks through a VAE's latent space: prior samples, reconstructions, interpolations, and likelihoods."""

from __future__ import annotations

from typing import Literal

import torch
from diffusers import ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from ...call_checks import check_batch_memory, check_bool, check_generator, check_int, check_output_type
from ...data import images_to_tensor
from ...images import OutputType, postprocess
from ...pipeline_base import HfgenPipeline
from .distributions import DecodeMode
from .modeling_vae import VAEModel


class VAEPipeline(HfgenPipeline):
    r"""Samples from the prior, reconstructs and interpolates images, and scores them with the IWAE bound.

    Images going in are (B, C, H, W) tensors in [0, 1] - the range every hfgen pipeline outputs - or PIL images;
    PIL images are converted to the model's channels and resized to its resolution (bicubic) by
    `hfgen.data.images_to_tensor`.

    Example:
    ```py
    >>> from hfgen import VAEPipeline
    >>> pipe = VAEPipeline.from_pretrained("out/vae-digits")
    >>> grid = pipe(batch_size=64, generator=torch.manual_seed(0)).images  # decoder means, as papers show
    >>> speckled = pipe(batch_size=64, generator=torch.manual_seed(0), decode="sample").images  # x ~ p(x | z)
    >>> image_a, image_b = pipe(batch_size=2, generator=torch.manual_seed(1), output_type="pt").images  # any two, in [0, 1]
    >>> strip = pipe.interpolate(image_a, image_b, num_frames=8).images
    >>> nats = pipe.log_likelihood(torch.stack([image_a, image_b]), k=1000)  # (2,) IWAE bound on log p(x)
    >>> nll_bits_per_dim = -nats / (pipe.vae.num_dimensions * math.log(2))
    ```
    """

    model_cpu_offload_seq = "vae"

    def __init__(self, vae: VAEModel) -> None:
        super().__init__()
        self.register_modules(vae=vae)

    @property
    def num_classes(self) -> None:
        """The VAE is unconditional (every hfgen pipeline answers this, so evaluation needs no family switch)."""
        return None

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: OutputType = "pil",
        return_dict: bool = True,
        decode: DecodeMode = "mean",
        latent_sampler: Literal["prior", "mixture"] | None = None,
    ) -> ImagePipelineOutput | tuple:
        r"""
        Args:
            batch_size (`int`, *optional*, defaults to 1): number of images to generate.
            generator (`torch.Generator`, *optional*): makes generation deterministic.
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"` or `"pt"` (in [0, 1]).
            return_dict (`bool`, *optional*, defaults to `True`): return an `ImagePipelineOutput`, else a tuple.
            decode (`str`, *optional*, defaults to `"mean"`): the image of p(x | z) - `"mean"` E[x | z] (what
                papers show; the likelihood is reported apart), `"mode"` its most probable pixels, or `"sample"`
                a draw with every pixel independent (the decoder's per-pixel uncertainty shows as speckle).
            latent_sampler (`str`, *optional*): where z comes from - `"prior"` N(0, I), or `"mixture"` the Gaussian
                mixture fitted to the training set's codes (`LatentMixture`, which `hfgen train vae` fits by
                default). Unset: the mixture when the model has one, else the prior.
        """
        check_int("batch_size", batch_size)
        check_generator(generator, batch_size)
        check_output_type(output_type, False, self)
        check_bool("return_dict", return_dict)
        if decode not in ("mean", "mode", "sample"):
            raise ValueError(f"Unknown decode {decode!r}: use 'mean' (the default), 'mode' or 'sample'.")
        config = self.vae.config  # float32 latents, the decoder's P numbers per pixel and the image made of them
        check_batch_memory(batch_size, 4 * (config.latent_dim + (config.parameters_per_pixel + 2) * self.vae.num_dimensions), self.vae.device)
        # 1. z ~ N(0, I) or the fitted mixture  2. the decoder's p(x | z)  3. its mean, mode or a draw
        if latent_sampler is None:
            latent_sampler = "prior" if self.vae.latent_mixture is None else "mixture"
        if latent_sampler not in ("prior", "mixture"):
            raise ValueError(f"Unknown latent_sampler {latent_sampler!r}: use 'prior' or 'mixture' (or leave it unset).")
        if latent_sampler == "mixture":
            if self.vae.latent_mixture is None:
                raise ValueError(
                    "latent_sampler='mixture' needs a mixture fitted to the training set's codes, and this VAE has none: "
                    "train it with --latent_mixture_components 10 (the default), or use latent_sampler='prior'."
                )
            latents = self.vae.latent_mixture.sample(batch_size, generator).to(self.vae.dtype)
        else:
            latents = randn_tensor(
                (batch_size, self.vae.config.latent_dim), generator=generator, device=self.vae.device, dtype=self.vae.dtype
            )
        params = self.vae.decoder(latents)  # (B, P, C, H, W)
        return self._output(self.vae.likelihood.decode(params, decode, generator), output_type, return_dict)

    @torch.no_grad()
    def reconstruct(
        self,
        images: torch.Tensor | list[Image.Image],
        output_type: OutputType = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """Encode to the posterior mean and decode: what the latent space keeps of each image."""
        latents = self.vae.encode(self._to_tensor(images)).mean  # (B, Z)
        return self._output(self.vae.decode(latents), output_type, return_dict)

    @torch.no_grad()
    def interpolate(
        self,
        image_a: torch.Tensor | Image.Image,
        image_b: torch.Tensor | Image.Image,
        num_frames: int = 8,
        output_type: OutputType = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """The whole strip of `num_frames` decoded images on the straight line between the two posterior means
        (the first and last frames are the reconstructions of `image_a` and `image_b`)."""
        check_int("num_frames", num_frames, minimum=2)
        ends = self._to_tensor([image_a, image_b])
        start, end = self.vae.encode(ends).mean  # (Z,) each
        weights = torch.linspace(0, 1, num_frames, device=start.device, dtype=start.dtype)[:, None]  # (F, 1)
        latents = torch.lerp(start, end, weights)  # (F, Z)
        return self._output(self.vae.decode(latents), output_type, return_dict)

    @torch.no_grad()
    def log_likelihood(
        self,
        images: torch.Tensor | list[Image.Image],
        k: int = 1000,
        batch_size: int = 1000,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """IWAE lower bound on log p(x) of images in [0, 1] with `k` importance samples, nats per image: (B,).
        Bits per dimension: `-bound / (pipe.vae.num_dimensions * math.log(2))`."""
        return self.vae.log_likelihood(self._to_tensor(images), k=k, batch_size=batch_size, generator=generator)

    @torch.no_grad()
    def elbo(self, images: torch.Tensor | list[Image.Image], generator: torch.Generator | None = None) -> torch.Tensor:
        """The ELBO of images in [0, 1], per image in nats: (B,); never above `log_likelihood` on average."""
        return self.vae.elbo(self._to_tensor(images), generator=generator)

    def _to_tensor(self, images: torch.Tensor | list[Image.Image | torch.Tensor]) -> torch.Tensor:
        """PIL images or (C, H, W) / (B, C, H, W) tensors in [0, 1] -> one (B, C, H, W) batch in the model's [-1, 1]."""
        config = self.vae.config
        if isinstance(images, Image.Image):
            images = [images]
        if isinstance(images, (list, tuple)):
            if all(isinstance(i, Image.Image) for i in images):
                return images_to_tensor(list(images), config.image_size, config.num_channels).to(self.vae.device)
            if all(isinstance(i, torch.Tensor) for i in images):
                images = torch.stack([i.squeeze(0) if i.ndim == 4 else i for i in images])
            else:
                raise TypeError("Pass PIL images or torch tensors (not a mix) in [0, 1].")
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be PIL images or a (B, C, H, W) tensor in [0, 1], got {type(images).__name__}.")
        if images.numel() and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
            raise ValueError(
                f"Image tensors must be in [0, 1] (what the pipeline outputs), got [{images.min().item():.3g}, "
                f"{images.max().item():.3g}]: map [-1, 1] images with (x + 1) / 2, 8-bit ones with x / 255."
            )
        return (images.unsqueeze(0) if images.ndim == 3 else images).to(self.vae.device) * 2 - 1

    def _output(self, images: torch.Tensor, output_type: OutputType, return_dict: bool) -> ImagePipelineOutput | tuple:
        images = postprocess(images, output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)
