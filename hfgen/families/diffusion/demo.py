"""The diffusion Space: samples with any diffusers sampler, and the trajectory data -> noise -> data as frames."""

from __future__ import annotations

from typing import Any

import gradio as gr
import torch
from diffusers import DDPMScheduler

from ...loading import load_pipeline
from ...widgets import frames, gallery_output, grid, header, image_output, seed_input, seeded, test_images, user_errors
from .pipeline_diffusion import DiffusionImagePipeline

MAX_IMAGES = 16
MAX_STEPS = 1000
MAX_FRAMES = 12
NO_CLASS = -1
"""Class control value for "no class" (unconditional sampling of a conditional model)."""
SCHEDULER_NAMES = {
    "dpmsolver": "DPM-Solver++", "dpmsolver-karras": "DPM-Solver++, Karras σ", "heun": "Heun (EDM)", "ddim": "DDIM", "ddpm": "DDPM",
}


def forward_noising(
    pipe: DiffusionImagePipeline, image: torch.Tensor, num_frames: int, generator: torch.Generator
) -> list[tuple[torch.Tensor, str]]:
    """q(x_t | x_0) at `num_frames` timesteps from 0 to T - 1 with one noise draw: (frame (C, H, W) in [0, 1], caption).
    The noise goes where the model denoises - pixels, or a latent diffusion's latents, decoded for display."""
    schedule = DDPMScheduler.from_config(pipe.scheduler.config)  # the training schedule, whatever the sampler
    last = schedule.config.num_train_timesteps - 1
    timesteps = torch.linspace(0, last, num_frames).round().long()  # (F,)
    clean = pipe.encode_images(image[None] * 2 - 1).expand(num_frames, -1, -1, -1)  # (F, c, h, w)
    noise = torch.randn(clean[:1].shape, generator=generator).expand_as(clean)
    noisy = pipe.decode_latents(schedule.add_noise(clean, noise, timesteps))
    return [((frame.clamp(-1, 1) + 1) / 2, f"t={t}" if t else "data") for frame, t in zip(noisy, timesteps.tolist())]


def reverse_process(
    pipe: DiffusionImagePipeline, num_frames: int, generator: torch.Generator, **call: Any
) -> list[tuple[torch.Tensor, str]]:
    """Sample one image, keeping `num_frames` snapshots of the denoising loop (the last is the sample), through
    `callback_on_step_end`; fewer when there are fewer steps."""
    snapshots: list[tuple[int, torch.Tensor]] = []

    def keep(pipe: DiffusionImagePipeline, step: int, timestep: torch.Tensor, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        snapshots.append((int(timestep), tensors["latents"][:1].clone()))
        return tensors

    pipe(
        batch_size=1, generator=generator, output_type="pt", callback_on_step_end=keep,
        callback_on_step_end_tensor_inputs=["latents"], **call,
    )
    chosen = torch.linspace(0, len(snapshots) - 1, num_frames).round().long().unique().tolist()  # always the last step
    return [
        ((pipe.decode_latents(snapshots[i][1])[0].clamp(-1, 1) + 1) / 2, f"step {i + 1}/{len(snapshots)}")
        for i in chosen
    ]


def build_demo(model: str) -> gr.Blocks:
    """The Space of a diffusion model - pixel or latent (its pipeline says where the noise goes)."""
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    channels, side, _ = pipe.image_shape
    real, real_labels, class_names = test_images(model, side, channels)
    conditional = pipe.num_classes is not None

    def sampler(scheduler: str) -> DiffusionImagePipeline:
        """A pipeline of its own per request: schedulers keep per-run state, and requests run concurrently."""
        request_pipe = type(pipe)(**pipe.components)
        request_pipe.set_progress_bar_config(disable=True)
        request_pipe.use_scheduler(scheduler)
        return request_pipe

    def call_options(steps: int, class_label: int | None, guidance: float) -> dict[str, Any]:
        options: dict[str, Any] = {"num_inference_steps": int(steps)}
        if conditional and class_label not in (None, NO_CLASS):
            options |= {"class_labels": int(class_label), "guidance_scale": float(guidance)}
        return options

    @user_errors
    def sample(seed: int, num_images: int, scheduler: str, steps: int, class_label: int | None, guidance: float) -> str:
        options = call_options(steps, class_label, guidance)
        return grid(sampler(scheduler)(batch_size=int(num_images), generator=seeded(seed), output_type="pt", **options).images)

    @user_errors
    def trajectory(
        index: int, num_frames: int, seed: int, scheduler: str, steps: int, class_label: int | None, guidance: float
    ) -> list[list[tuple[str, str]]]:
        options = call_options(steps, class_label, guidance)
        generator = seeded(seed)
        forward = forward_noising(pipe, real[int(index)], int(num_frames), generator)
        reverse = reverse_process(sampler(scheduler), int(num_frames), generator, **options)
        return [frames(torch.stack([frame for frame, _ in run]), [caption for _, caption in run]) for run in (forward, reverse)]

    def sampler_controls() -> list[gr.components.Component]:
        class_choices = [("no class", NO_CLASS)] + [(name, i) for i, name in enumerate(class_names[: pipe.num_classes or 0])]
        return [
            gr.Dropdown([(label, name) for name, label in SCHEDULER_NAMES.items()], value="dpmsolver", label="sampler"),
            gr.Slider(1, MAX_STEPS, value=20, step=1, label="denoising steps (DPM-Solver++/DDIM: 10-50; DDPM: 1000)"),
            gr.Dropdown(class_choices, value=NO_CLASS, label="class", visible=conditional),
            gr.Slider(1.0, 10.0, value=3.0, step=0.5, label="classifier-free guidance", visible=conditional),
        ]

    unet = pipe.unet.config
    latent = pipe.image_shape != (unet.in_channels, unet.sample_size, unet.sample_size)  # noise in a VAE's latents
    with gr.Blocks(title="hfgen latent diffusion" if latent else "hfgen diffusion") as demo:
        header(
            "Latent diffusion: denoising in an autoencoder's latent space" if latent else "Diffusion: a noise schedule and a denoiser",
            model,
            "Training adds Gaussian noise to real images at a random step t of a fixed schedule and teaches a UNet to "
            "predict that noise. Sampling runs the other way: start from pure noise and remove a little at each step. "
            "Fewer steps with a smarter sampler (DPM-Solver++, DDIM) give nearly the quality of DDPM's 1000."
            + (f" Here the images are first encoded by a VAE into {unet.in_channels} x {unet.sample_size} x "
               f"{unet.sample_size} latents: the noise and the denoising happen there, and every frame is decoded."
               if latent else ""),
        )
        with gr.Tab("Sample"):
            with gr.Row():
                with gr.Column(scale=1):
                    seed = seed_input()
                    num_images = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="images")
                    controls = sampler_controls()
                    sample_button = gr.Button("Generate", variant="primary")
                with gr.Column(scale=2):
                    samples = image_output("generated")
            sample_button.click(sample, [seed, num_images, *controls], samples, api_name="sample")
        with gr.Tab("Trajectory"):
            gr.Markdown("Top: a real test image noised by the training schedule, x_0 -> x_T (pure noise). Bottom: the "
                        "reverse process of one sample, snapshots of the denoising loop from noise to data.")
            with gr.Row():
                index = gr.Slider(0, len(real) - 1, value=0, step=1, label="real test image #")
                num_frames = gr.Slider(3, MAX_FRAMES, value=8, step=1, label="frames")
                trajectory_seed = seed_input()
            trajectory_controls = sampler_controls()
            trajectory_button = gr.Button("Noise and denoise", variant="primary")
            forward = gallery_output("forward: data + noise at step t of the training schedule", columns=8, height=190)
            reverse = gallery_output("reverse: denoising, step by step", columns=8, height=190)
            trajectory_button.click(
                trajectory, [index, num_frames, trajectory_seed, *trajectory_controls], [forward, reverse], api_name="trajectory"
            )
    return demo
