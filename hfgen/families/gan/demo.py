"""The GAN Space: samples by seed, class and truncation; a latent walk; the discriminator's verdict."""

from __future__ import annotations

import gradio as gr
import torch

from ...loading import load_pipeline
from ...widgets import frames, gallery_output, grid, header, image_output, seed_input, seeded, test_images, user_errors

MAX_IMAGES = 64
MAX_FRAMES = 16
EVERY_CLASS = -1
"""Class control value meaning "cycle through the classes" (the pipeline's default for conditional models)."""


def class_input(num_classes: int | None, class_names: list[str], default: str) -> gr.Dropdown:
    """A class picker, hidden for unconditional models; `EVERY_CLASS` leaves the choice to the pipeline."""
    choices = [(default, EVERY_CLASS)] + [(name, index) for index, name in enumerate(class_names[: num_classes or 0])]
    return gr.Dropdown(choices, value=EVERY_CLASS, label="class", visible=num_classes is not None)


def build_demo(model: str) -> gr.Blocks:
    pipe = load_pipeline(model)
    config = pipe.gan_generator.config
    real, real_labels, class_names = test_images(model, config.image_size, config.num_channels)
    conditional = pipe.num_classes is not None

    def labels(class_label: int | None) -> int | None:
        return None if not conditional or class_label in (None, EVERY_CLASS) else int(class_label)

    @user_errors
    def sample(seed: int, num_images: int, class_label: int | None, truncation: float) -> str:
        images = pipe(
            batch_size=int(num_images), generator=seeded(seed), class_labels=labels(class_label),
            truncation=truncation, output_type="pt",
        ).images
        return grid(images)

    @user_errors
    def walk(seed_a: int, seed_b: int, num_frames: int, class_label: int | None, truncation: float) -> list[str]:
        start, end = (pipe.prepare_latents(1, seeded(seed))[0] for seed in (seed_a, seed_b))
        strip = pipe.interpolate(
            start, end, num_frames=int(num_frames), class_labels=labels(class_label), truncation=truncation,
            output_type="pt",
        ).images
        return frames(strip)

    @user_errors
    def verdict(index: int, seed: int) -> tuple[str, dict[str, float]]:
        index = int(index)
        label = real_labels[index] if conditional else None
        generated = pipe(batch_size=1, generator=seeded(seed), class_labels=label, output_type="pt").images
        pair = torch.cat([real[index : index + 1], generated])  # (2, C, H, W) in [0, 1]
        class_labels = torch.tensor([label, label]) if conditional else None
        with torch.no_grad():
            logits = pipe.discriminator(pair * 2 - 1, class_labels=class_labels).logits  # (2,)
        realness = torch.sigmoid(logits).tolist()
        return grid(pair, cols=2), {f"real test image #{index}": realness[0], f"generated (seed {int(seed)})": realness[1]}

    with gr.Blocks(title="hfgen GAN") as demo:
        header(
            "GAN: a generator and a discriminator in an adversarial game",
            model,
            "The generator turns a latent z ~ N(0, I) into an image in one forward pass; the discriminator learns to "
            "tell real images from generated ones, and the generator learns to fool it. Truncation pulls z towards "
            "the centre of the prior: more typical images, less variety.",
        )
        with gr.Tab("Sample"):
            with gr.Row():
                with gr.Column(scale=1):
                    seed = seed_input()
                    num_images = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="images")
                    class_label = class_input(pipe.num_classes, class_names, "every class in turn")
                    truncation = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="truncation (1 = none)")
                    sample_button = gr.Button("Generate", variant="primary")
                with gr.Column(scale=2):
                    samples = image_output("generated")
            sample_button.click(sample, [seed, num_images, class_label, truncation], samples, api_name="sample")
        with gr.Tab("Latent walk"):
            with gr.Row():
                seed_a, seed_b = seed_input(1, "from seed"), seed_input(2, "to seed")
                walk_frames = gr.Slider(2, MAX_FRAMES, value=8, step=1, label="frames")
                walk_class = class_input(pipe.num_classes, class_names, "the first class")
                walk_truncation = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="truncation")
            walk_button = gr.Button("Walk", variant="primary")
            walk_gallery = gallery_output("along the great circle between the two latents (slerp)")
            walk_button.click(walk, [seed_a, seed_b, walk_frames, walk_class, walk_truncation], walk_gallery, api_name="walk")
        with gr.Tab("Discriminator", visible=pipe.discriminator is not None):
            gr.Markdown("The discriminator's probability that each image is real: a well-trained pair leaves it "
                        "unsure (near 0.5) about both; a discriminator that wins easily means the generator lags.")
            with gr.Row():
                with gr.Column(scale=1):
                    index = gr.Slider(0, len(real) - 1, value=0, step=1, label="real test image #")
                    verdict_seed = seed_input(0, "generated image's seed")
                    verdict_button = gr.Button("Ask the discriminator", variant="primary")
                with gr.Column(scale=1):
                    pair = image_output("real | generated")
                with gr.Column(scale=1):
                    scores = gr.Label(label="P(real) according to the discriminator")
            verdict_button.click(verdict, [index, verdict_seed], [pair, scores], api_name="discriminate")
    return demo
