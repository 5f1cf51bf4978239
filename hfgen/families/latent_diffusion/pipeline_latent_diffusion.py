"""Latent diffusion (Rombach et al. 2022, Stable Diffusion's recipe): denoise in an autoencoder's latent space,
then decode. The denoising loop, schedulers and classifier-free guidance are pixel diffusion's, inherited."""

from __future__ import annotations

import torch
from diffusers import SchedulerMixin, UNet2DModel

from ..diffusion import DiffusionImagePipeline
from ..vae import VAEModel


class LatentDiffusionPipeline(DiffusionImagePipeline):
    r"""Samples images by denoising a spatial VAE latent with a UNet and decoding it with the (frozen) VAE.

    The UNet sees latents multiplied by `vae.config.scaling_factor` (measured at training time so they have
    unit variance, Stable Diffusion's 0.18215); decoding divides it back out. Folders are saved with
    DPM-Solver++ as the scheduler, so pass `num_inference_steps=20`; `use_scheduler` swaps it.

    Example:
    ```py
    >>> from hfgen import LatentDiffusionPipeline
    >>> pipe = LatentDiffusionPipeline.from_pretrained("out/ldm-digits")
    >>> images = pipe(batch_size=16, generator=torch.manual_seed(0), num_inference_steps=20).images
    ```
    """

    model_cpu_offload_seq = "unet->vae"
    log_likelihood = None
    """The inherited variational bound would score latents, not images (an image's likelihood would need the
    VAE's decoder term too): latent diffusion reports no bits/dim rather than a wrong one."""

    def __init__(self, vae: VAEModel, unet: UNet2DModel, scheduler: SchedulerMixin) -> None:
        check_latent_unet(vae, unet)
        super().__init__(unet=unet, scheduler=scheduler)
        self.register_modules(vae=vae.requires_grad_(False).eval())

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, c, h, w) -> E[x | z] of the VAE's decoder, (B, C, H, W) in [-1, 1]."""
        return self.vae.decode(latents / self.vae.config.scaling_factor)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] -> the scaled posterior means the UNet was trained to denoise."""
        return self.vae.encode(images).mean.view(-1, *self.vae.config.latent_shape) * self.vae.config.scaling_factor

    @property
    def image_shape(self) -> tuple[int, int, int]:
        config = self.vae.config
        return (config.num_channels, config.image_size, config.image_size)


def check_latent_unet(vae: VAEModel, unet: UNet2DModel) -> None:
    """A UNet that fits the VAE's latent map, or a ValueError that names the mismatch and the fix."""
    if not vae.config.spatial_latent:
        raise ValueError(
            f"The VAE has a vector latent ({vae.config.latent_dim} numbers) but a UNet denoises a feature map: "
            "train one with `hfgen train vae --spatial_latent --latent_channels 4 ...`."
        )
    channels, side, _ = vae.config.latent_shape
    unet_shape = (unet.config.in_channels, unet.config.out_channels, unet.config.sample_size)
    if unet_shape != (channels, channels, side):
        raise ValueError(
            f"The UNet takes {unet_shape[0]} -> {unet_shape[1]} channels at {unet_shape[2]}x{unet_shape[2]}, but the VAE's "
            f"latent is {channels} x {side} x {side}: build the UNet with in_channels = out_channels = {channels} and "
            f"sample_size = {side} (hfgen train latent-diffusion does), or pass the VAE it was trained with."
        )
