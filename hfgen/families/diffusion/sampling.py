"""Sampling a diffusion model from the command line: choose the diffusers scheduler, steps and guidance."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ...images import save_image_grid
from ...loading import load_pipeline

if TYPE_CHECKING:
    from ...sampling import SampleArguments


def sample_diffusion(args: SampleArguments) -> str:
    pipe = load_pipeline(args.model, args.revision).to(args.device)
    pipe.use_scheduler(args.scheduler)
    generator = torch.Generator(args.device).manual_seed(args.seed)
    images = pipe(
        batch_size=args.num_images, generator=generator, num_inference_steps=args.steps,
        class_labels=args.class_label, guidance_scale=args.guidance_scale, output_type="pt",
    ).images
    save_image_grid(images * 2 - 1, args.output)
    return f"wrote {args.output}"
