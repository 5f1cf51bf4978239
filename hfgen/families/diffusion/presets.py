"""Diffusion's named architectures: the CPU-sized default UNet and Ho et al.'s CIFAR-10 UNet."""

from __future__ import annotations

from .. import Preset

PRESETS = (
    Preset(
        name="diffusion-small",
        family="diffusion",
        resolution=8,
        channels=1,
        parameters={"unet": 1_163_105},
        source="hfgen's CPU-sized default (configuration_diffusion.default_unet_config), sized for 8x8 digits",
    ),
    Preset(
        name="ddpm-cifar10",
        family="diffusion",
        resolution=32,
        channels=3,
        parameters={"unet": 35_746_307},
        source="Ho et al. 2020, Appendix B (35.7M); the network of google/ddpm-cifar10-32",
        # 4 levels 128-256-256-256 (32 -> 16 -> 8 -> 4), 2 res blocks each, one-head self-attention at 16x16,
        # GroupNorm(32), dropout 0.1.
        arguments={
            "block_out_channels": [128, 256, 256, 256],
            "layers_per_block": 2,
            "attention_levels": [1],
            "attention_head_dim": 256,
            "norm_num_groups": 32,
            "dropout": 0.1,
        },
    ),
)
