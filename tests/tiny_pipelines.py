"""Tiny, seeded pipelines of every family for the tests of the pipeline contract: built in milliseconds, untrained."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, UNet2DModel

from hfgen import (
    DiffusionImagePipeline, GANConfig, GANGenerator, GANPipeline, HfgenGPTConfig, HfgenGPTForCausalLM, PixelGPTPipeline,
    VAEConfig, VAEModel, VAEPipeline,
)
from hfgen.data.pixels import PixelVocabulary
from hfgen.families.diffusion import default_unet_config
from hfgen.families.latent_diffusion import LatentDiffusionPipeline

TINY_GAN = {"latent_dim": 16, "generator_channels": 16, "discriminator_channels": 8}


def tiny_diffusion(num_classes: int | None = None) -> DiffusionImagePipeline:
    torch.manual_seed(0)
    unet = UNet2DModel(**default_unet_config(8, 1, num_classes, block_out_channels=(8, 16, 16))).eval()
    pipe = DiffusionImagePipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=50))  # DDIM: no step noise
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_latent_diffusion(num_classes: int | None = None) -> LatentDiffusionPipeline:
    torch.manual_seed(0)
    vae = VAEModel(VAEConfig(image_size=8, grey_levels=17, block_out_channels=(8,), spatial_latent=True, latent_channels=2))
    vae.config.scaling_factor = 0.5
    unet = UNet2DModel(**default_unet_config(4, 2, num_classes, block_out_channels=(16, 16))).eval()
    pipe = LatentDiffusionPipeline(vae=vae.eval(), unet=unet, scheduler=DDIMScheduler(num_train_timesteps=50))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_gan(num_classes: int | None = None) -> GANPipeline:
    torch.manual_seed(0)
    config = GANConfig(**TINY_GAN, num_classes=num_classes)
    return GANPipeline(gan_generator=GANGenerator(config).eval())


def tiny_vae(num_classes: None = None) -> VAEPipeline:
    torch.manual_seed(0)
    config = VAEConfig(image_size=8, grey_levels=17, latent_dim=4, block_out_channels=(8, 16), hidden_dim=32)
    return VAEPipeline(vae=VAEModel(config).eval())


def tiny_pixel_gpt(num_classes: int | None = None) -> PixelGPTPipeline:
    torch.manual_seed(0)
    config = HfgenGPTConfig(
        vocab_size=PixelVocabulary(17, num_classes).vocab_size, max_position_embeddings=65, hidden_size=32,
        num_hidden_layers=2, num_attention_heads=4,
    )
    pipe = PixelGPTPipeline(model=HfgenGPTForCausalLM(config).eval(), resolution=8, grey_levels=17, num_classes=num_classes)
    pipe.set_progress_bar_config(disable=True)
    return pipe
