"""The GAN's named architectures: the CPU-sized default pair and DCGAN at 64x64."""

from __future__ import annotations

from .. import Preset

PRESETS = (
    Preset(
        name="gan-small",
        family="gan",
        resolution=8,
        channels=1,
        parameters={"generator": 265_153, "discriminator": 133_889},
        source="hfgen's CPU-sized default (GANArguments), sized for 8x8 digits",
    ),
    Preset(
        name="dcgan",
        family="gan",
        resolution=64,
        channels=3,
        parameters={"generator": 3_576_704, "discriminator": 2_765_568},
        source="Radford et al. 2016, Fig. 1 / Sec. 4; as in github.com/pytorch/examples/tree/main/dcgan (nz 100, ngf = ndf = 64)",
        arguments={
            "layout": "dcgan",
            "latent_dim": 100,
            "generator_channels": 512,  # ngf * 8 at the 4x4 map
            "discriminator_channels": 64,  # ndf at 32x32
            "generator_norm": "batch",
            "discriminator_norm": "batch",
            "spectral_norm": False,
        },
    ),
)
