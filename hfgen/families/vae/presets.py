"""The VAE's named architectures: the CPU-sized default and the beta-VAE conv net at 64x64."""

from __future__ import annotations

from .. import Preset

PRESETS = (
    Preset(
        name="vae-small",
        family="vae",
        resolution=8,
        channels=1,
        parameters={"vae": 247_857},
        source="hfgen's CPU-sized default (VAEArguments), for 8x8 digits' 17 grey levels",
    ),
    Preset(
        name="beta-vae",
        family="vae",
        resolution=64,
        channels=1,
        parameters={"vae": 764_245},
        source="Higgins et al. 2017 (beta-VAE), Appendix Table 1 row 3; disentanglement_lib's conv_encoder / "
        "deconv_decoder (Locatello et al. 2019), 10 latents, Bernoulli decoder",
        arguments={
            "layout": "beta_vae",
            "block_out_channels": [32, 32, 64, 64],
            "hidden_dim": 256,
            "latent_dim": 10,
            "likelihood": "bernoulli",
        },
    ),
)
