"""Checks of the arguments every pipeline call shares, run before anything is computed.

The Python API's counterpart of the CLI's option checks: a bad value is one `TypeError` (wrong kind) or
`ValueError` (wrong value) whose single line names the argument, the value and the fix - never a torch or
diffusers error from deep inside a call, and never a partial result.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Literal

import psutil
import torch

FLOAT32_MAX = torch.finfo(torch.float32).max
"""Pipelines compute in float32: a float argument beyond it is as unusable as inf."""

SchedulerName = Literal["ddpm", "ddim", "dpmsolver", "dpmsolver-karras", "heun"]
"""Diffusion samplers by name (`DiffusionImagePipeline.use_scheduler`): DPM-Solver++ is the default everywhere. Here,
with the pipelines' other call checks, because a Hub repo's exported pipeline code inlines this module."""


def check_int(name: str, value: object, minimum: int = 1, optional: bool = False) -> None:
    """An int (not a bool, not a float that happens to be whole) of at least `minimum`; None when `optional`."""
    if value is None and optional:
        return
    allowed = "positive" if minimum == 1 else f"at least {minimum}"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}: pass e.g. {name}={max(minimum, 2)}.")
    if value < minimum:
        raise ValueError(f"{name} must be {allowed}, got {value}: pass e.g. {name}={max(minimum, 2)}.")


def check_float(
    name: str, value: object, minimum: float, maximum: float = FLOAT32_MAX, above_minimum: bool = False,
    optional: bool = False, meaning: str = "",
) -> None:
    """A real number in [minimum, maximum] (or (minimum, maximum] when `above_minimum`), never nan or inf."""
    if value is None and optional:
        return
    if maximum < FLOAT32_MAX:
        allowed = f"in {'(' if above_minimum else '['}{minimum:g}, {maximum:g}]"
    else:
        allowed = f"a finite number {'>' if above_minimum else '>='} {minimum:g}"
    allowed += f" ({meaning})" if meaning else ""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be {allowed}, got {type(value).__name__} {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and (value > minimum if above_minimum else value >= minimum) and value <= maximum):
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")


def check_output_type(value: object, latent: bool, pipeline: object) -> None:
    """'pil', 'np', 'pt', and 'latent' where the pipeline has latents to return (what its loop denoised)."""
    choices = ("pil", "np", "pt", "latent") if latent else ("pil", "np", "pt")
    if not isinstance(value, str) or value not in choices:
        fix = f": {type(pipeline).__name__} has no latents to return (only diffusion pipelines do)." if value == "latent" else "."
        listed = ", ".join(repr(choice) for choice in choices)
        raise (ValueError if isinstance(value, str) else TypeError)(f"output_type must be one of {listed}, got {value!r}{fix}")


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}.")


def check_generator(generator: object, images: int, one_per_image: bool = True) -> None:
    """None, one `torch.Generator`, or (`one_per_image`) a list of exactly one per image."""
    if generator is None or isinstance(generator, torch.Generator):
        return
    if one_per_image and isinstance(generator, list) and all(isinstance(g, torch.Generator) for g in generator):
        if len(generator) != images:
            raise ValueError(
                f"generator is a list of {len(generator)} generators for {images} images: pass one torch.Generator, "
                "or a list of one per image."
            )
        return
    kinds = "a torch.Generator or a list of one per image" if one_per_image else "one torch.Generator"
    raise TypeError(f"generator must be {kinds}, got {type(generator).__name__}: pass e.g. generator=torch.manual_seed(0).")


def check_latents(latents: object, shape: tuple[int, ...], fix: str, dimensions: str = "") -> None:
    """None, or a finite float tensor of exactly `shape` (whose `dimensions` are named, as "(images, latent_dim) = ");
    `fix` says how to draw one."""
    if latents is None:
        return
    if not isinstance(latents, torch.Tensor) or not latents.is_floating_point():
        raise TypeError(f"latents must be a float tensor of shape {dimensions}{shape}, got {getattr(latents, 'dtype', type(latents).__name__)}: {fix}.")
    if tuple(latents.shape) != shape:
        raise ValueError(f"latents must have shape {dimensions}{shape}, got {tuple(latents.shape)}: {fix}.")
    if not torch.isfinite(latents).all():
        raise ValueError(f"latents contain nan or inf: {fix}.")


def check_num_inference_steps(value: object, scheduler: object) -> None:
    """At least 1 step and at most the scheduler's training timesteps (each step is one of them)."""
    check_int("num_inference_steps", value)
    trained = scheduler.config.num_train_timesteps
    if value > trained:
        raise ValueError(
            f"num_inference_steps must be at most the {trained} timesteps the model was trained on, got {value}: "
            f"pass e.g. num_inference_steps={min(20, trained)} with DPM-Solver++ or {trained} with DDPM."
        )


def check_tensor_names(value: object, name: str = "callback_on_step_end_tensor_inputs") -> None:
    """A list (or tuple) of tensor names, not one bare name: a string would be read letter by letter."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"{name} must be a list of tensor names such as ['latents'], got {value!r}.")


def free_memory(device: torch.device | str) -> int:
    """Bytes a new allocation on `device` can take now: the GPU's free memory, else the host's available RAM."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


def check_batch_memory(images: int, bytes_per_image: int, device: torch.device | str) -> None:
    """Refuse a batch whose own per-image tensors (`bytes_per_image`: noise, outputs, caches - a lower bound that
    leaves out the network's activations) could not fit in the device's free memory, before any is allocated."""
    needed, free = images * bytes_per_image, free_memory(device)
    if needed > free:
        raise ValueError(
            f"batch_size x num_images_per_prompt = {images:,} images would need at least {needed / 2**30:,.1f} GiB "
            f"({bytes_per_image / 2**20:,.3g} MiB each), but {torch.device(device)} has {free / 2**30:,.1f} GiB free: "
            f"lower batch_size to at most {max(free // bytes_per_image, 1):,} and generate the rest in further calls."
        )
