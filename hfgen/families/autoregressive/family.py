"""The autoregressive family, declared once: a GPT that predicts the next token - of text, or of an image's pixels."""

from __future__ import annotations

from pathlib import Path

from .. import Family, ZooPlan
from .configuration_hfgen_gpt import HfgenGPTConfig
from .objective import AutoregressiveArguments, AutoregressiveObjective
from .pipeline_pixel_gpt import PixelGPTPipeline
from .presets import PRESETS
from .sampling import sample

FAMILY = Family(
    name="autoregressive",
    summary="a sequence model (GPT): next-token prediction, for text or an image's pixels in raster order",
    card_folder=Path(__file__).parent,
    arguments=AutoregressiveArguments,
    objective=AutoregressiveObjective,
    pipelines=(PixelGPTPipeline,),
    sample=sample,
    zoo={
        "tiny": ZooPlan(2, (
            "--modality", "pixels", "--num_hidden_layers", "1", "--hidden_size", "32", "--num_attention_heads", "2",
            "--validation_max_examples", "16",
        )),
        "laptop": ZooPlan(1000, ("--modality", "pixels", "--validation_max_examples", "300")),
        # ~5 s a step on 2 cores; its learning curve passes the KDE between 500 and 750 steps (docs/evaluation.md).
        # A warm-up of 50, not the budget's 200: the curve's 1,000-step run warmed up 50, and the zoo keeps that run.
        "cpu": ZooPlan(1000, ("--modality", "pixels", "--validation_max_examples", "300", "--lr_warmup_steps", "50")),
        "full": ZooPlan(30000, ("--modality", "pixels", "--validation_max_examples", "1000")),
    },
    model_types=(HfgenGPTConfig.model_type,),
    presets=PRESETS,
    demo="hfgen.families.autoregressive.demo:build_demo",
)
