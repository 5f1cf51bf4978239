"""The VAE Space: sample (its fitted latent mixture, else the prior), reconstruct an image, walk between two images,
map the latent space."""

from __future__ import annotations

import gradio as gr
import pandas as pd
import torch
from PIL import Image

from ...data import images_to_tensor
from ...loading import load_pipeline
from ...widgets import (
    frames, gallery_output, grid, header, image_output, seed_input, seeded, test_images, to_pil, uploaded_image, user_errors,
)
from .pipeline_vae import VAEPipeline

MAX_IMAGES = 64
MAX_FRAMES = 16
MAP_POINTS = 300
"""Test images placed on the latent map (the digits test split has 300)."""


def latent_map(pipe: VAEPipeline, images: torch.Tensor, labels: list[int], class_names: list[str]) -> pd.DataFrame:
    """Posterior means of `images` (N, C, H, W) in [0, 1], projected on their first two principal components."""
    with torch.no_grad():
        means = pipe.vae.encode(images * 2 - 1).mean  # (N, Z)
    if means.shape[1] > 2:
        centred = means - means.mean(0)
        _, _, components = torch.linalg.svd(centred, full_matrices=False)  # rows: principal directions
        means = centred @ components[:2].T  # (N, 2)
    return pd.DataFrame({"z1": means[:, 0].tolist(), "z2": means[:, -1].tolist(), "class": [class_names[i] for i in labels]})


def build_demo(model: str) -> gr.Blocks:
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    config = pipe.vae.config
    images, labels, class_names = test_images(model, config.image_size, config.num_channels, MAP_POINTS)
    first_of_class = {label: images[labels.index(label)] for label in sorted(set(labels))}
    examples = [to_pil(image[None])[0] for image in list(first_of_class.values())[:2] or [images[0], images[1]]]

    @user_errors
    def sample(seed: int, num_images: int) -> str:
        return grid(pipe(batch_size=int(num_images), generator=seeded(seed), output_type="pt").images)

    @user_errors
    def reconstruct(image: Image.Image | None) -> str:
        original = (images_to_tensor([uploaded_image(image)], config.image_size, config.num_channels) + 1) / 2
        return grid(torch.cat([original, pipe.reconstruct(original, output_type="pt").images]), cols=2)

    @user_errors
    def interpolate(image_a: Image.Image | None, image_b: Image.Image | None, num_frames: int) -> list[str]:
        ends = [uploaded_image(image_a, "the first image"), uploaded_image(image_b, "the second image")]
        return frames(pipe.interpolate(*ends, num_frames=int(num_frames), output_type="pt").images)

    @user_errors
    def draw_map() -> pd.DataFrame:
        return latent_map(pipe, images, labels, class_names)

    with gr.Blocks(title="hfgen VAE") as demo:
        header(
            "VAE: encoder + decoder around a latent space",
            model,
            "The encoder maps an image to a Gaussian in a small latent space; the decoder maps a latent back to an "
            "image. Training balances reconstruction against a KL term that keeps the codes close to N(0, I), so "
            "decoding draws from N(0, I) gives new images and straight lines between codes give smooth morphs. "
            + (
                "This model also fitted a Gaussian mixture to its training codes and samples from it: draws that "
                "land where the codes are decode to sharper images than draws from the prior."
                if pipe.vae.latent_mixture is not None
                else ""
            ),
        )
        with gr.Tab("Sample"):
            with gr.Row():
                with gr.Column(scale=1):
                    seed = seed_input()
                    num_images = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="images")
                    sample_button = gr.Button("Generate", variant="primary")
                with gr.Column(scale=2):
                    samples = image_output(
                        "z ~ N(0, I), decoded" if pipe.vae.latent_mixture is None else "z ~ the fitted mixture, decoded"
                    )
            sample_button.click(sample, [seed, num_images], samples, api_name="sample")
        with gr.Tab("Reconstruct"):
            with gr.Row():
                with gr.Column(scale=1):
                    upload = gr.Image(
                        examples[0], type="pil", label="image (upload, paste or keep the test digit)",
                        sources=["upload", "clipboard"],
                    )
                    reconstruct_button = gr.Button("Reconstruct", variant="primary")
                with gr.Column(scale=1):
                    reconstruction = image_output("original | reconstruction")
            reconstruct_button.click(reconstruct, upload, reconstruction, api_name="reconstruct")
        with gr.Tab("Interpolate"):
            with gr.Row():
                image_a = gr.Image(examples[0], type="pil", label="from", sources=["upload", "clipboard"])
                image_b = gr.Image(examples[-1], type="pil", label="to", sources=["upload", "clipboard"])
                with gr.Column():
                    num_frames = gr.Slider(2, MAX_FRAMES, value=8, step=1, label="frames")
                    interpolate_button = gr.Button("Interpolate", variant="primary")
            strip = gallery_output("decoded along the straight line between the two codes")
            interpolate_button.click(interpolate, [image_a, image_b, num_frames], strip, api_name="interpolate")
        with gr.Tab("Latent map"):
            gr.Markdown(f"Where the encoder puts {len(images)} test images: the first two principal components of "
                        "their posterior means, one colour per class. Classes that form separate clouds are what "
                        "the VAE learned without ever seeing a label.")
            map_button = gr.Button("Draw the map", variant="primary")
            scatter = gr.ScatterPlot(x="z1", y="z2", color="class", label="latent codes of the test set", height=420)
            map_button.click(draw_map, None, scatter, api_name="latent_map")
    return demo
