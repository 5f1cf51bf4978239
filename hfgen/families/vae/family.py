"""The VAE, declared once: encoder + decoder around a latent space, trained on reconstruction + KL (the ELBO)."""

from __future__ import annotations

from pathlib import Path

from .. import Family, ZooPlan
from .objective import VAEArguments, VAEObjective
from .pipeline_vae import VAEPipeline
from .presets import PRESETS
from .sampling import sample_vae

FAMILY = Family(
    name="vae",
    summary="encoder + decoder around a latent space: reconstruction + KL divergence (the ELBO)",
    card_folder=Path(__file__).parent,
    arguments=VAEArguments,
    objective=VAEObjective,
    pipelines=(VAEPipeline,),
    sample=sample_vae,
    zoo={
        "tiny": ZooPlan(2, ("--hidden_dim", "32", "--block_out_channels", "8", "16", "--latent_dim", "4")),
        "laptop": ZooPlan(4000),
        "cpu": ZooPlan(3000),
        "full": ZooPlan(30000),
    },
    likelihood_options=lambda settings: {"k": settings.iwae_samples},
    # Papers show the decoder's mean; a draw from p(x | z) shows what the likelihood models. The zoo shows both.
    zoo_rows={"decoder mean": {"decode": "mean"}, "decoder sample": {"decode": "sample"}},
    presets=PRESETS,
    demo="hfgen.families.vae.demo:build_demo",
)
