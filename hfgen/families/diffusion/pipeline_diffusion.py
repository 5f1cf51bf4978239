"""Image diffusion: noise -> step-by-step denoising with a diffusers UNet2DModel and any diffusers scheduler."""

from __future__ import annotations

import math
from inspect import signature
from typing import Any

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    HeunDiscreteScheduler,
    ImagePipelineOutput,
    SchedulerMixin,
    UNet2DModel,
)
from diffusers.utils.torch_utils import randn_tensor

from ...call_checks import SchedulerName, check_bool, check_float, check_generator, check_latents, check_num_inference_steps, check_output_type
from ...callbacks import StepCallback, StepCallbacksMixin
from ...images import LatentOutputType, postprocess
from ...labels import ClassLabels, batch_and_class_labels, class_label_tensor
from ...pipeline_base import HfgenPipeline
from .likelihood import variational_bound

SCHEDULERS: dict[SchedulerName, tuple[type[SchedulerMixin], dict[str, Any]]] = {
    "ddpm": (DDPMScheduler, {}),
    "ddim": (DDIMScheduler, {"clip_sample": False}),
    "dpmsolver": (DPMSolverMultistepScheduler, {}),
    # the same network, other noise levels: Karras et al. 2022's σ spacing (ρ = 7), dense near the data
    "dpmsolver-karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
    # EDM's own sampler (Karras et al. 2022, Algorithm 1): 2nd-order Heun on Karras σs, 2 UNet calls per step
    "heun": (HeunDiscreteScheduler, {"use_karras_sigmas": True}),
}
"""Sampler name -> diffusers scheduler class and the config it overrides, each built from the trained schedule."""


class DiffusionImagePipeline(StepCallbacksMixin, HfgenPipeline):
    r"""Samples images from a denoising diffusion model, unconditionally or per class with guidance.

    The scheduler is swappable the diffusers way, e.g. DPM-Solver++ at 20 steps:
    `pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)`. A class-conditional
    UNet has `num_class_embeds = num_classes + 1`; its last label means "no class" and is what
    classifier-free guidance contrasts with.

    Example:
    ```py
    >>> from hfgen import DiffusionImagePipeline
    >>> pipe = DiffusionImagePipeline.from_pretrained("out/ddpm-digits")
    >>> images = pipe(batch_size=16, generator=torch.manual_seed(0), num_inference_steps=1000).images
    ```
    """

    model_cpu_offload_seq = "unet"
    _callback_tensor_inputs = ["latents", "class_labels"]
    _guidance_scale: float = 1.0
    _num_timesteps: int = 0

    def __init__(self, unet: UNet2DModel, scheduler: SchedulerMixin) -> None:
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)
        self.step_options: dict[str, float] = {}  # scheduler.step options of the sampler use_scheduler set (DDIM's eta)
        # the forward process the model was trained on (the saved scheduler's), whatever sampler is swapped in later
        self.noise_schedule = DDPMScheduler.from_config(scheduler.config)

    def use_scheduler(self, name: SchedulerName, eta: float = 0.0) -> None:
        """Swap the sampler, keeping the trained noise schedule.

        DDIM does not clip its predicted x_0 (`clip_sample=False`, whatever the saved DDPM config says): diffusers'
        DDIM step clips x_0 but keeps the unclipped noise prediction, so every step mixes two inconsistent estimates
        and more steps give *worse* samples (FID 15 at 50 steps, 41 at 250 on digits; unclipped 8.9 and 8.0).
        `eta` is DDIM's stochasticity (0: deterministic DDIM, 1: DDPM-like noise), kept in its config and passed to
        every step. DPM-Solver++ on the cosine schedule needs `lambda_min_clipped=-5.1` (diffusers' advice):
        without it the last steps blow up to saturated black-and-white images. `heun` calls the UNet twice per
        step but the last: 20 steps are 39 calls.
        """
        if name not in SCHEDULERS:
            raise ValueError(f"Unknown scheduler {name!r}: use one of {', '.join(SCHEDULERS)}.")
        if eta != 0.0 and name != "ddim":
            raise ValueError(f"eta is DDIM's; {name!r} takes none: drop eta or use 'ddim'.")
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like), got {eta}.")
        scheduler_class, extra = SCHEDULERS[name]
        if scheduler_class is DPMSolverMultistepScheduler and self.scheduler.config.get("beta_schedule") == "squaredcos_cap_v2":
            extra = extra | {"lambda_min_clipped": -5.1}
        self.scheduler = scheduler_class.from_config(self.scheduler.config, **extra)
        self.step_options = {"eta": eta} if name == "ddim" else {}

    @torch.no_grad()
    def log_likelihood(
        self,
        images: torch.Tensor,
        generator: torch.Generator | None = None,
        num_timesteps: int | None = None,
        grey_levels: int = 256,
    ) -> torch.Tensor:
        """The variational bound on log p(x) (Ho et al. 2020, eq. 5; a lower bound, as the VAE's IWAE) of images
        (B, C, H, W) in [0, 1] on a `grey_levels` grid, nats per image: (B,). `num_timesteps` subsamples the
        bound's T - 1 UNet terms (stratified, unbiased; see `hfgen.families.diffusion.likelihood`)."""
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise TypeError(f"images must be a float (B, C, H, W) tensor in [0, 1], got {getattr(images, 'dtype', type(images))}.")
        if images.numel() and (images.min() < 0 or images.max() > 1):
            raise ValueError(
                f"images must be in [0, 1], got [{images.min().item():.3g}, {images.max().item():.3g}]: map [-1, 1] "
                "images with (x + 1) / 2, 8-bit ones with x / 255."
            )
        labels = self.class_label_tensor(None, len(images))  # conditional UNets: "no class", the unconditional p(x)
        pixels = images.to(self.device, self.unet.dtype) * 2 - 1
        return -variational_bound(self.unet, self.noise_schedule, pixels, grey_levels, num_timesteps, labels, generator)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """What the denoising loop produced -> images in [-1, 1]. Pixel diffusion denoises the images themselves;
        latent diffusion overrides this to decode with its autoencoder."""
        return latents

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] -> what the denoising loop works on (the inverse of `decode_latents`):
        the images themselves here, where the forward process adds its noise."""
        return images

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the images it generates."""
        side = self.unet.config.sample_size
        return (self.unet.config.out_channels, side, side)

    @property
    def num_classes(self) -> int | None:
        """Classes the UNet is conditioned on (None when unconditional)."""
        embeds = self.unet.config.num_class_embeds
        return embeds - 1 if embeds else None

    @property
    def guidance_scale(self) -> float:
        """The classifier-free guidance weight of the current (or last) call. A step-end callback may change it
        between steps through `pipe._guidance_scale`, as diffusers' `SDCFGCutoffCallback` does to stop guiding."""
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        """Whether the next step guides: a weight above 1 on a class-conditional UNet (diffusers' convention)."""
        return self._guidance_scale > 1.0 and self.num_classes is not None

    @property
    def num_timesteps(self) -> int:
        """Denoising steps of the current (or last) call: what a cutoff callback's `cutoff_step_ratio` scales."""
        return self._num_timesteps

    def bytes_per_image(self) -> int:
        """A lower bound on what one image takes while sampling, in float32: its latents and the UNet's inputs and
        outputs for both guidance halves, the UNet's widest feature map, and the decoded image."""
        config = self.unet.config
        area = config.sample_size**2
        return 4 * (6 * config.in_channels * area + 2 * config.block_out_channels[0] * area + math.prod(self.image_shape))

    def step_class_labels(self, labels: torch.Tensor | None, batch_size: int) -> torch.Tensor | None:
        """The UNet's labels for this step: the conditional ones, followed by the "no class" half while guiding.

        `labels` are the last step's (what a callback saw as `class_labels`), so a callback may turn guidance off with
        or without dropping that half (diffusers' cutoff callbacks drop theirs), turn it on, or guide away from a
        class of its choosing by replacing the half."""
        if labels is None:
            return None
        if len(labels) not in (batch_size, 2 * batch_size):
            raise ValueError(
                f"class_labels holds {len(labels)} labels for {batch_size} images: a callback may return one label per "
                "image, or one per image followed by the unconditional half while guiding."
            )
        if not self.do_classifier_free_guidance:
            return labels[:batch_size]
        if len(labels) == batch_size:
            return torch.cat([labels, torch.full_like(labels, self.num_classes)])
        return labels

    def class_label_tensor(self, class_labels: ClassLabels | None, batch_size: int) -> torch.Tensor | None:
        """Validate labels and broadcast them to (batch_size,); None -> the "no class" label on conditional UNets."""
        if class_labels is None:
            if self.num_classes is None:
                return None
            return torch.full((batch_size,), self.num_classes, dtype=torch.long, device=self.device)
        return class_label_tensor(class_labels, batch_size, self.num_classes, self.device)

    def prepare_latents(
        self, batch_size: int, generator: torch.Generator | list[torch.Generator] | None, latents: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The starting noise, (batch_size, unet channels, sample_size, sample_size), scaled for the scheduler: drawn,
        or the given `latents` (unscaled N(0, I) draws, as diffusers takes them)."""
        config = self.unet.config
        shape = (batch_size, config.in_channels, config.sample_size, config.sample_size)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=self._execution_device, dtype=self.unet.dtype)
        else:
            check_latents(latents, shape, "draw (images, channels, size, size) N(0, I) noise for this batch and UNet")
        return latents.to(self._execution_device, self.unet.dtype) * self.scheduler.init_noise_sigma

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int = 1000,
        class_labels: ClassLabels | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        latents: torch.Tensor | None = None,
        output_type: LatentOutputType = "pil",
        return_dict: bool = True,
        callback_on_step_end: StepCallback | None = None,
        callback_on_step_end_tensor_inputs: list[str] | tuple[str, ...] = ("latents",),
    ) -> ImagePipelineOutput | tuple:
        r"""
        Args:
            batch_size (`int`, *optional*): images to generate; defaults to one per class label, else 1.
            generator (`torch.Generator`, *optional*): makes generation deterministic.
            num_inference_steps (`int`, *optional*, defaults to 1000): denoising steps (20 suit DPM-Solver++).
            class_labels (`int`, `list[int]` or `torch.Tensor`, *optional*): class per image (conditional models).
            guidance_scale (`float`, *optional*): classifier-free guidance weight; values <= 1 mean no guidance
                (diffusers' convention), so any model takes 1.0.
            num_images_per_prompt (`int`, *optional*, defaults to 1): images per label (or per `batch_size` slot).
            latents (`torch.Tensor`, *optional*): starting noise, (images, channels, size, size) N(0, I) draws.
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"`, `"pt"`, or `"latent"`: the final
                latents before decoding and clamping (`postprocess(pipe.decode_latents(latents), "pt")` gives `"pt"`).
            return_dict (`bool`, *optional*, defaults to `True`): return an `ImagePipelineOutput`, else a tuple.
            callback_on_step_end (`Callable`, *optional*): `callback(pipe, step, timestep, callback_kwargs) -> dict`,
                called after each denoising step; set `pipe._interrupt = True` to stop early, `pipe._guidance_scale`
                to change guidance (see `hfgen.callbacks`, `pipe.num_timesteps`).
            callback_on_step_end_tensor_inputs (`list[str]`, *optional*, defaults to `["latents"]`): tensors the
                callback gets (and may replace): `"latents"`, and `"class_labels"`, the UNet's labels (while guiding,
                one per image followed by the unconditional half; None for an unconditional UNet).
        """
        check_num_inference_steps(num_inference_steps, self.scheduler)
        check_float("guidance_scale", guidance_scale, 0.0, optional=True, meaning="<= 1: no guidance")
        check_output_type(output_type, True, self)
        check_bool("return_dict", return_dict)
        self._guidance_scale = 1.0 if guidance_scale is None else float(guidance_scale)
        if self._guidance_scale > 1.0 and self.num_classes is None:
            raise ValueError(
                f"guidance_scale={guidance_scale} needs a class-conditional model; this one is unconditional: "
                "drop guidance_scale (or pass 1.0)."
            )
        if self._guidance_scale > 1.0 and class_labels is None:
            raise ValueError("guidance_scale needs class_labels to guide towards: pass class_labels.")
        tensor_inputs = self.start_steps(callback_on_step_end, callback_on_step_end_tensor_inputs)
        batch_size, labels = batch_and_class_labels(
            batch_size, class_labels, self.num_classes, num_images_per_prompt, self._execution_device, self.bytes_per_image()
        )
        check_generator(generator, batch_size)
        if labels is None:
            labels = self.class_label_tensor(None, batch_size)

        self.scheduler.set_timesteps(num_inference_steps, device=self._execution_device)
        self._num_timesteps = len(self.scheduler.timesteps)
        latents = self.prepare_latents(batch_size, generator, latents)  # after set_timesteps: some sigmas depend on it
        # stochastic samplers draw their step noise from the generator; deterministic ones (Heun) take none
        step_options = self.step_options | ({"generator": generator} if "generator" in signature(self.scheduler.step).parameters else {})
        for step, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            # 1. predict the noise (or v) - for the conditional and "no class" halves in one UNet call when guiding
            guided = self.do_classifier_free_guidance  # read every step: a callback may have changed it
            labels = self.step_class_labels(labels, batch_size)
            model_input = torch.cat([latents, latents]) if guided else latents
            model_input = self.scheduler.scale_model_input(model_input, t)
            output = self.unet(model_input, t, class_labels=labels).sample
            # 2. classifier-free guidance: push the conditional prediction away from the unconditional one
            if guided:
                conditional, unconditional = output.chunk(2)
                output = unconditional + self._guidance_scale * (conditional - unconditional)
            # 3. x_t -> x_{t-1}
            latents = self.scheduler.step(output, t, latents, **step_options).prev_sample
            # 4. the callback sees (and may replace) the new latents and the labels, or stops the loop
            tensors = self.end_step(callback_on_step_end, tensor_inputs, step, t, {"latents": latents, "class_labels": labels})
            latents, labels = tensors["latents"], tensors["class_labels"]
            if self.interrupt:
                break

        images = latents if output_type == "latent" else postprocess(self.decode_latents(latents), output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)
