"""Latent diffusion's named architectures: the CPU-sized default latent UNet and LDM-4's CelebA-HQ UNet.

Their resolution and channels are those of the latent the UNet denoises; the autoencoder is the --vae given.
"""

from __future__ import annotations

from .. import Preset

PRESETS = (
    Preset(
        name="latent-diffusion-small",
        family="latent-diffusion",
        resolution=4,
        channels=2,
        parameters={"unet": 714_786},
        source="hfgen's CPU-sized default, on the 2x4x4 latent of the zoo's 8x8 digits VAE",
    ),
    Preset(
        name="ldm-celebahq-256",
        family="latent-diffusion",
        resolution=64,
        channels=3,
        parameters={"unet": 274_056_163},
        source="Rombach et al. 2022, Table 14 (LDM-4 CelebA-HQ, 274M); CompVis/latent-diffusion "
        "configs/latent-diffusion/celebahq-ldm-vq-4.yaml, the UNet of CompVis/ldm-celebahq-256",
        # model_channels 224, channel_mult 1 2 3 4, 2 res blocks, attention at 32, 16 and 8 (levels 1-3), 32-channel heads
        arguments={
            "block_out_channels": [224, 448, 672, 896],
            "layers_per_block": 2,
            "attention_levels": [1, 2, 3],
            "attention_head_dim": 32,
            "norm_num_groups": 32,
        },
    ),
)
