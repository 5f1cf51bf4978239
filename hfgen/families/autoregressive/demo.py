"""The autoregressive Space: next-token prediction, for text (streamed) or for an image's pixels (completed as it goes).

A folder with a model_index.json holds a pixel model (`PixelGPTPipeline`); a plain transformers folder holds a
text model. Both show the one idea: p(x) = prod_i p(x_i | x_<i), sampled one token at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from queue import Queue
from threading import Thread

import gradio as gr
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

from ...data.pixels import images_to_uint8, raster, uint8_to_levels, unraster
from ...loading import load_pipeline, read_model_file
from ...widgets import grid, header, image_output, seed_input, seeded, test_images, user_errors
from .pipeline_pixel_gpt import PixelGPTPipeline
from .sampling import check_sampling_options

MAX_IMAGES = 16
MAX_NEW_TOKENS = 256
MAX_PROMPT_CHARS = 2000
TOP_TOKENS = 10
"""Bars in the next-token chart."""
COMPLETION_UPDATES = 16
"""Frames a completion streams while it samples, pixel by pixel."""
COMPLETION_TIMEOUT = 120.0
"""Seconds without a new frame after which a completion gives up (the sampling thread has died or hangs)."""
SAMPLING_TEACHES = (
    "A GPT (decoder-only transformer) learns p(next token | every token before it). Generation samples one token, "
    "appends it and repeats; temperature sharpens (< 1) or flattens (> 1) each distribution, top-k and top-p cut "
    "its unlikely tail."
)


def build_demo(model: str) -> gr.Blocks:
    if read_model_file(model, "model_index.json") is None:
        return build_text_demo(model)
    return build_pixel_demo(model)


def bars(probabilities: torch.Tensor, names: list[str]) -> pd.DataFrame:
    """The `TOP_TOKENS` most likely of a (V,) distribution, as rows of a bar chart (most likely first)."""
    top = probabilities.topk(min(TOP_TOKENS, len(names)))
    return pd.DataFrame({"token": [names[i] for i in top.indices.tolist()], "probability": top.values.tolist()})


def bar_chart(label: str) -> gr.BarPlot:
    """Bars of `bars()` rows, most likely first."""
    return gr.BarPlot(x="token", y="probability", sort="-y", label=label, height=360)


def build_text_demo(model: str) -> gr.Blocks:
    tokenizer = AutoTokenizer.from_pretrained(model)
    lm = AutoModelForCausalLM.from_pretrained(model, use_safetensors=True).eval()
    context = lm.config.max_position_embeddings

    def encode(prompt: str, max_new_tokens: int = 0) -> torch.Tensor:
        """(1, T) prompt ids (a lone end-of-text token for an empty prompt), refusing prompts that leave no room."""
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"The prompt is {len(prompt)} characters: keep it under {MAX_PROMPT_CHARS}.")
        ids = tokenizer(prompt, return_tensors="pt").input_ids if prompt else torch.tensor([[tokenizer.eos_token_id]])
        if ids.shape[1] + max_new_tokens > context:
            raise ValueError(
                f"The prompt is {ids.shape[1]} tokens and max tokens is {max_new_tokens}: together more than the "
                f"model's context window of {context} tokens - shorten the prompt or lower max tokens."
            )
        return ids

    @user_errors
    def generate(prompt: str, temperature: float, top_p: float, top_k: int, max_new_tokens: int, seed: int) -> Iterator[str]:
        check_sampling_options(temperature, int(top_k) or None, top_p)
        ids = encode(prompt or "", int(max_new_tokens))
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=60)
        options = dict(
            attention_mask=torch.ones_like(ids), do_sample=True, temperature=temperature, top_p=top_p,
            top_k=int(top_k) or None, max_new_tokens=int(max_new_tokens), pad_token_id=tokenizer.eos_token_id,
            streamer=streamer,
        )

        def run() -> None:
            torch.manual_seed(int(seed))  # generate() draws from the global generator
            lm.generate(ids, **options)

        Thread(target=run, daemon=True).start()
        text = prompt or ""
        for piece in streamer:
            text += piece
            yield text

    @user_errors
    def next_token(prompt: str) -> pd.DataFrame:
        with torch.no_grad():
            logits = lm(encode(prompt or "", 1)).logits[0, -1]  # (V,)
        names = [repr(tokenizer.decode([i])) for i in range(logits.shape[0])]
        return bars(F.softmax(logits.float(), dim=-1), names)

    with gr.Blocks(title="hfgen autoregressive (text)") as demo:
        header("Autoregressive text: next-token prediction", model, SAMPLING_TEACHES)
        with gr.Tab("Generate"):
            with gr.Row():
                with gr.Column(scale=1):
                    prompt = gr.Textbox("def ", label="prompt", lines=3, max_length=MAX_PROMPT_CHARS)
                    temperature = gr.Slider(0.05, 2.0, value=0.8, step=0.05, label="temperature")
                    top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="top-p")
                    top_k = gr.Slider(0, 200, value=50, step=1, label="top-k (0 = off)")
                    max_new_tokens = gr.Slider(
                        1, min(MAX_NEW_TOKENS, context - 1), value=min(64, context // 2), step=1, label="max tokens"
                    )
                    seed = seed_input()
                    generate_button = gr.Button("Generate", variant="primary")
                with gr.Column(scale=2):
                    text = gr.Textbox(label="prompt + generated text (streams as it is sampled)", lines=16)
            generate_button.click(generate, [prompt, temperature, top_p, top_k, max_new_tokens, seed], text, api_name="generate")
        with gr.Tab("Next token"):
            with gr.Row():
                with gr.Column(scale=1):
                    next_prompt = gr.Textbox("import ", label="prompt", lines=3, max_length=MAX_PROMPT_CHARS)
                    next_button = gr.Button("Predict the next token", variant="primary")
                with gr.Column(scale=2):
                    chart = bar_chart(f"p(next token | prompt), top {TOP_TOKENS}")
            next_button.click(next_token, next_prompt, chart, api_name="next_token")
    return demo


def build_pixel_demo(model: str) -> gr.Blocks:
    pipe: PixelGPTPipeline = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    config = pipe.config
    side, levels = config.resolution, config.grey_levels
    real, real_labels, class_names = test_images(model, side, config.channels)
    conditional = pipe.num_classes is not None

    def label_of(index: int) -> int | None:
        return real_labels[index] if conditional else None

    @user_errors
    def sample(seed: int, num_images: int, temperature: float) -> str:
        labels = [i % pipe.num_classes for i in range(int(num_images))] if conditional else None
        images = pipe(
            batch_size=int(num_images), generator=seeded(seed), class_labels=labels, temperature=temperature,
            output_type="pt",
        ).images
        return grid(images)

    def pixel_tokens(index: int) -> torch.Tensor:
        """(1, D) grey levels of test image `index`, in raster order."""
        return raster(uint8_to_levels(images_to_uint8(real[index : index + 1], side, config.channels), levels))

    def shown(pixels: torch.Tensor, known: int) -> torch.Tensor:
        """(1, D) grey levels of which the first `known` are drawn -> (1, C, H, W) in [0, 1], the rest mid-grey."""
        values = pixels.float() / (levels - 1)
        values[:, known:] = 0.5
        return unraster(values, side, config.channels)

    @user_errors
    def complete(index: int, known_rows: int, seed: int, temperature: float) -> Iterator[str]:
        """Sample pixel by pixel while a step-end callback writes the known top rows in (the pipeline's contract lets
        a callback replace the newest token), and stream a frame every few pixels from the sampling thread."""
        index, generator = int(index), seeded(seed)
        target, original = pixel_tokens(index), real[index : index + 1]
        prefix = int(known_rows) * side * config.channels  # known pixels: sequence positions 1..prefix
        every = max(1, (pipe.num_pixels - prefix) // COMPLETION_UPDATES)
        updates: Queue = Queue()

        def draw(pipe: PixelGPTPipeline, step: int, position: int, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            tokens = tensors["tokens"]  # (1, 1 + D): start/class token, then pixels
            if position <= prefix:
                tokens[:, position] = target[:, position - 1]
            elif (position - prefix) % every == 0 or position == pipe.num_pixels:
                updates.put(shown(tokens[:, 1:], position))
            return {"tokens": tokens}

        def run() -> None:
            try:
                pipe(
                    batch_size=1, generator=generator, class_labels=label_of(index), temperature=temperature,
                    output_type="pt", callback_on_step_end=draw,
                )
                updates.put(None)
            except Exception as error:  # re-raised in the request's thread, where the user sees it
                updates.put(error)

        yield grid(torch.cat([original, shown(target, prefix)]), cols=2)
        Thread(target=run, daemon=True).start()
        while (frame := updates.get(timeout=COMPLETION_TIMEOUT)) is not None:
            if isinstance(frame, Exception):
                raise frame
            yield grid(torch.cat([original, frame]), cols=2)

    @user_errors
    def next_pixel(index: int, known_rows: int) -> tuple[str, pd.DataFrame]:
        index, known_rows = int(index), int(known_rows)
        if known_rows >= side:
            raise ValueError(f"Every row is known: keep fewer than {side} rows so there is a next pixel to predict.")
        pixels = pixel_tokens(index)  # (1, D)
        prefix = known_rows * side * config.channels
        label = torch.tensor([label_of(index)]) if conditional else None
        tokens = torch.cat([pipe.vocabulary.first_tokens(label, 1), pixels[:, :prefix]], dim=1)  # (1, 1 + prefix)
        with torch.no_grad():
            logits = pipe.model(tokens).logits[0, -1, :levels]  # (G,)
        return grid(shown(pixels, prefix)), bars(F.softmax(logits.float(), dim=-1), [f"grey {g}/{levels - 1}" for g in range(levels)])

    def index_slider() -> gr.Slider:
        return gr.Slider(0, len(real) - 1, value=0, step=1, label="real test image #")

    def rows_slider() -> gr.Slider:
        return gr.Slider(0, side - 1, value=side // 2, step=1, label="known top rows")

    with gr.Blocks(title="hfgen autoregressive (pixels)") as demo:
        header(
            "Autoregressive pixels: next-pixel prediction",
            model,
            SAMPLING_TEACHES.replace("token", "pixel") + " Here the tokens are grey levels read in raster order, so the "
            "model gives the exact likelihood of an image - and can complete one from its top rows.",
        )
        with gr.Tab("Complete"):
            with gr.Row():
                with gr.Column(scale=1):
                    index = index_slider()
                    known_rows = rows_slider()
                    seed = seed_input()
                    temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")
                    complete_button = gr.Button("Complete", variant="primary")
                with gr.Column(scale=2):
                    completion = image_output("original | completion (drawn as it goes)")
            complete_button.click(complete, [index, known_rows, seed, temperature], completion, api_name="complete")
        with gr.Tab("Sample"):
            with gr.Row():
                with gr.Column(scale=1):
                    sample_seed = seed_input()
                    num_images = gr.Slider(1, MAX_IMAGES, value=8, step=1, label="images")
                    sample_temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")
                    sample_button = gr.Button("Generate", variant="primary")
                with gr.Column(scale=2):
                    samples = image_output("generated pixel by pixel")
            sample_button.click(sample, [sample_seed, num_images, sample_temperature], samples, api_name="sample")
        with gr.Tab("Next pixel"):
            with gr.Row():
                with gr.Column(scale=1):
                    next_index = index_slider()
                    next_rows = rows_slider()
                    next_button = gr.Button("Predict the next pixel", variant="primary")
                with gr.Column(scale=1):
                    context = image_output("what the model sees (grey: not yet known)")
                with gr.Column(scale=2):
                    chart = bar_chart(f"p(next pixel | pixels so far), top {TOP_TOKENS}")
            next_button.click(next_pixel, [next_index, next_rows], [context, chart], api_name="next_pixel")
    return demo
