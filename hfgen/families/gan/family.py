"""The GAN, declared once: a generator and a discriminator trained against each other."""

from __future__ import annotations

from pathlib import Path

from .. import Family, ZooPlan
from .objective import GANArguments, GANObjective
from .pipeline_gan import GANPipeline
from .presets import PRESETS
from .sampling import sample_gan

FAMILY = Family(
    name="gan",
    summary="generator + discriminator: an adversarial game, one forward pass per sample",
    card_folder=Path(__file__).parent,
    arguments=GANArguments,
    objective=GANObjective,
    pipelines=(GANPipeline,),
    sample=sample_gan,
    zoo={
        "tiny": ZooPlan(2, ("--generator_channels", "16", "--discriminator_channels", "8", "--latent_dim", "8")),
        "laptop": ZooPlan(4000),
        "cpu": ZooPlan(3000),
        "full": ZooPlan(30000),
    },
    presets=PRESETS,
    demo="hfgen.families.gan.demo:build_demo",
)
