"""`hfgen sample`'s options: one set for every family; each family's `Family.sample` reads the ones it uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from .arguments import (
    require_device, require_existing, require_in, require_non_negative, require_positive, require_seed, require_writable,
)
from .call_checks import SchedulerName


@dataclass
class SampleArguments:
    model: str = field(metadata={"help": "A folder written by `hfgen train`, or a Hub repo id."})
    revision: str | None = field(default=None, metadata={"help": "Hub repo ids: the branch, tag or commit to sample from."})
    num_images: int = field(default=64, metadata={"help": "Images to generate."})
    seed: int = field(default=0, metadata={"help": "Seed of the torch.Generator: same seed, same output."})
    output: str = field(default="samples.png", metadata={"help": "Where the grid / strip PNG is written."})
    device: str = field(default="cpu", metadata={"help": "torch device to sample on, e.g. cuda."})
    # diffusion
    scheduler: SchedulerName = field(default="dpmsolver", metadata={"help": "Diffusion sampler."})
    steps: int = field(default=20, metadata={"help": "Diffusion denoising steps."})
    guidance_scale: float | None = field(default=None, metadata={"help": "Classifier-free guidance weight (diffusion)."})
    # class-conditional models (diffusion, GAN, pixel autoregressive)
    class_label: int | None = field(default=None, metadata={"help": "Class to sample (class-conditional models)."})
    # GAN
    truncation: float | None = field(default=None, metadata={"help": "GAN truncation of the latent, in (0, 1]."})
    # VAE and GAN: walks through the latent space
    reconstruct: str | None = field(default=None, metadata={"help": "VAE: an image to encode and reconstruct."})
    interpolate: list[str] | None = field(
        default=None,
        metadata={"help": "VAE: two image paths; GAN: two seeds. Writes the strip of frames between them."},
    )
    num_frames: int = field(default=8, metadata={"help": "Frames in an interpolation strip."})
    # autoregressive text
    prompt: str | None = field(default=None, metadata={"help": "Text model: prompt to continue (streams to stdout)."})
    max_new_tokens: int = field(default=80, metadata={"help": "Text model: tokens to generate."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (> 0)."})
    top_k: int | None = field(default=None, metadata={"help": "Sample from the k most likely tokens."})
    top_p: float | None = field(default=None, metadata={"help": "Nucleus sampling mass, in (0, 1]."})

    def __post_init__(self) -> None:
        require_positive(self, "num_images", "steps", "num_frames", "max_new_tokens", "temperature", "top_k")
        require_non_negative(self, "guidance_scale", "class_label")
        require_in(self, "truncation", 0.0, 1.0, low_open=True)
        require_in(self, "top_p", 0.0, 1.0, low_open=True)
        require_seed(self)
        require_device("device", self.device)
        require_writable("output", self.output, "file")
        require_existing("reconstruct", self.reconstruct, "file")
        if self.interpolate is not None and len(self.interpolate) != 2:
            raise ValueError(
                f"--interpolate needs exactly two image paths (VAE) or two seeds (GAN), got {len(self.interpolate)}: "
                f"{self.interpolate}."
            )

