"""Latent diffusion, declared once: pixel diffusion's UNet and schedulers run in a spatial VAE's latent space."""

from __future__ import annotations

from pathlib import Path

from .. import Family, ZooPlan, ZooPrerequisite
from ..diffusion.family import scheduler_options
from ..diffusion.sampling import sample_diffusion
from .objective import LatentDiffusionArguments, LatentDiffusionObjective
from .pipeline_latent_diffusion import LatentDiffusionPipeline
from .presets import PRESETS


def spatial_vae(max_steps: int, *flags: str) -> ZooPrerequisite:
    """The zoo trains this VAE first and passes its folder as --vae.

    beta 0.1 keeps the latent informative (Stable Diffusion's autoencoder weights its KL by ~1e-6): on digits,
    400 latent-UNet steps reach FID 26 on a 1,000-step beta-0.1 VAE against 46 on a beta-1 one (docs/families/latent-diffusion.md).
    """
    return ZooPrerequisite("vae", "--vae", ZooPlan(max_steps, ("--spatial_latent", *flags)))


FAMILY = Family(
    name="latent-diffusion",
    summary="diffusion in a VAE's latent space (Stable Diffusion's recipe): denoise the latent, then decode it",
    card_folder=Path(__file__).parent,
    arguments=LatentDiffusionArguments,
    objective=LatentDiffusionObjective,
    pipelines=(LatentDiffusionPipeline,),
    sample=sample_diffusion,
    zoo={
        "tiny": ZooPlan(2, ("--block_out_channels", "16", "16"), spatial_vae(2, "--block_out_channels", "8", "--latent_channels", "2")),
        "laptop": ZooPlan(1000, (), spatial_vae(2000, "--block_out_channels", "32", "--latent_channels", "2", "--beta", "0.1")),
        "cpu": ZooPlan(1500, (), spatial_vae(3000, "--block_out_channels", "32", "--latent_channels", "2", "--beta", "0.1")),
        "full": ZooPlan(40000, (), spatial_vae(30000, "--block_out_channels", "32", "64", "--latent_channels", "4", "--beta", "0.1")),
    },
    sampling_options=scheduler_options,
    presets=PRESETS,
    demo="hfgen.families.diffusion.demo:build_demo",  # the same Space: the pipeline says where the noise goes
)
