"""Diffusion, declared once: noise schedule + denoiser, trained to undo noise step by step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import Family, ZooPlan
from .objective import DiffusionArguments, DiffusionObjective
from .pipeline_diffusion import DiffusionImagePipeline
from .presets import PRESETS
from .sampling import sample_diffusion


def scheduler_options(pipe: DiffusionImagePipeline, scheduler: str, steps: int) -> dict[str, Any]:
    """Evaluate with the chosen diffusers sampler and number of denoising steps."""
    pipe.use_scheduler(scheduler)
    return {"num_inference_steps": steps}


FAMILY = Family(
    name="diffusion",
    summary="noise schedule + denoiser (a diffusers UNet2DModel): learns to undo noise step by step",
    card_folder=Path(__file__).parent,
    arguments=DiffusionArguments,
    objective=DiffusionObjective,
    pipelines=(DiffusionImagePipeline,),
    sample=sample_diffusion,
    zoo={
        "tiny": ZooPlan(2, ("--block_out_channels", "16", "16", "32")),
        "laptop": ZooPlan(1000),
        "cpu": ZooPlan(1500),
        "full": ZooPlan(40000),
    },
    sampling_options=scheduler_options,
    likelihood_options=lambda settings: {"num_timesteps": settings.bpd_timesteps, "grey_levels": settings.grey_levels},
    presets=PRESETS,
    demo="hfgen.families.diffusion.demo:build_demo",
)
