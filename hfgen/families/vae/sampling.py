"""Sampling a VAE from the command line: a grid of prior samples, a reconstruction, or an interpolation strip.

Input images are read with PIL, converted to the model's channels and - when their size differs - resized
(bicubic) to its resolution by `hfgen.data.images_to_tensor`; the line printed says when that happened.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image, UnidentifiedImageError

from ...data import images_to_tensor
from ...images import save_image_grid
from ...loading import load_pipeline

if TYPE_CHECKING:
    from ...sampling import SampleArguments
    from .pipeline_vae import VAEPipeline


def sample_vae(args: SampleArguments) -> str:
    pipe = load_pipeline(args.model, args.revision).to(args.device)
    if args.reconstruct and args.interpolate:
        raise ValueError("Pass either --reconstruct IMAGE or --interpolate IMAGE_A IMAGE_B, not both.")
    if args.reconstruct:
        image, note = _read_image(args.reconstruct, pipe)
        reconstruction = pipe.reconstruct(image, output_type="pt").images
        pair = torch.cat([image.to(reconstruction.device), reconstruction])
        save_image_grid(pair * 2 - 1, args.output, cols=len(pair))
        return f"wrote {args.output} (original | reconstruction){note}"
    if args.interpolate:
        if len(args.interpolate) != 2:
            raise ValueError(f"--interpolate takes exactly two image paths, got {len(args.interpolate)}: {args.interpolate}.")
        (image_a, note_a), (image_b, note_b) = (_read_image(path, pipe) for path in args.interpolate)
        frames = pipe.interpolate(image_a, image_b, num_frames=args.num_frames, output_type="pt").images * 2 - 1
        save_image_grid(frames, args.output, cols=len(frames))
        return f"wrote {args.output} ({args.num_frames} frames){note_a}{note_b}"
    generator = torch.Generator(args.device).manual_seed(args.seed)
    images = pipe(batch_size=args.num_images, generator=generator, output_type="pt").images
    save_image_grid(images * 2 - 1, args.output)
    return f"wrote {args.output}"


def _read_image(path: str, pipe: VAEPipeline) -> tuple[torch.Tensor, str]:
    """(1, C, H, W) in [0, 1] at the model's size, and a note when the file had to be resized."""
    config = pipe.vae.config
    if not Path(path).is_file():
        raise FileNotFoundError(f"Image {path!r} does not exist: pass the path of a PNG/JPEG image.")
    try:
        image = Image.open(path)
        image.load()
    except UnidentifiedImageError:
        raise ValueError(f"{path!r} is not an image PIL can read: pass a PNG or JPEG file.") from None
    size = config.image_size
    note = "" if image.size == (size, size) else f"; resized {path} from {image.width}x{image.height} to {size}x{size}"
    return (images_to_tensor([image], size, config.num_channels) + 1) / 2, note
