"""Sampling a GAN from the command line: a grid (optionally one class, truncated) or a latent walk between two seeds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from ...images import save_image_grid
from ...loading import load_pipeline

if TYPE_CHECKING:
    from ...sampling import SampleArguments


def sample_gan(args: SampleArguments) -> str:
    pipe = load_pipeline(args.model, args.revision).to(args.device)
    if args.interpolate:
        seed_a, seed_b = _two_seeds(args.interpolate)
        start, end = (pipe.prepare_latents(1, torch.Generator(args.device).manual_seed(seed))[0] for seed in (seed_a, seed_b))
        frames = pipe.interpolate(
            start, end, num_frames=args.num_frames, class_labels=args.class_label, truncation=args.truncation, output_type="pt"
        ).images * 2 - 1
        save_image_grid(frames, args.output, cols=len(frames))
        return f"wrote {args.output} ({args.num_frames} frames from the latent of seed {seed_a} to that of seed {seed_b})"
    generator = torch.Generator(args.device).manual_seed(args.seed)
    images = pipe(
        batch_size=args.num_images, generator=generator, class_labels=args.class_label, truncation=args.truncation,
        output_type="pt",
    ).images
    save_image_grid(images * 2 - 1, args.output)
    return f"wrote {args.output}"


def _two_seeds(values: list[str]) -> tuple[int, int]:
    if len(values) != 2 or not all(v.lstrip("-").isdigit() for v in values):
        raise ValueError(f"--interpolate takes two integer seeds for a GAN, e.g. --interpolate 0 1; got {values}.")
    return int(values[0]), int(values[1])
