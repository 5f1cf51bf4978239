"""Sampling the autoregressive family from the command line: images pixel by pixel, or text streamed to stdout."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TextStreamer

from ...images import save_image_grid
from ...loading import load_pipeline, read_model_file

if TYPE_CHECKING:
    from ...sampling import SampleArguments
    from .pipeline_pixel_gpt import PixelGPTPipeline


def sample(args: SampleArguments) -> str:
    """A pixel model (a pipeline folder) writes a grid; a text model (a transformers folder) streams text."""
    if read_model_file(args.model, "model_index.json", args.revision) is None:
        return sample_text(args)
    return sample_pixels(load_pipeline(args.model, args.revision).to(args.device), args)


def sample_pixels(pipe: PixelGPTPipeline, args: SampleArguments) -> str:
    generator = torch.Generator(args.device).manual_seed(args.seed)
    images = pipe(
        batch_size=args.num_images, generator=generator, class_labels=args.class_label,
        temperature=args.temperature, output_type="pt",
    ).images
    save_image_grid(images * 2 - 1, args.output)
    return f"wrote {args.output}"


def check_sampling_options(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if temperature <= 0:
        raise ValueError(f"--temperature must be > 0, got {temperature}: use 1.0 for the model's own distribution.")
    if top_k is not None and top_k <= 0:
        raise ValueError(f"--top_k must be a positive number of tokens, got {top_k}.")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"--top_p must be in (0, 1], got {top_p}: e.g. 0.9 keeps the tokens holding 90% of the mass.")


def sample_text(args: SampleArguments) -> str:
    """Continue `args.prompt` (or start a fresh document) and stream the text to stdout as it is generated.

    A prompt that leaves no room for `--max_new_tokens` in the context window is an error, not silently cut.
    """
    check_sampling_options(args.temperature, args.top_k, args.top_p)
    tokenizer = AutoTokenizer.from_pretrained(args.model, revision=args.revision)
    model = AutoModelForCausalLM.from_pretrained(args.model, revision=args.revision, use_safetensors=True).to(args.device).eval()
    prompt = args.prompt or ""
    input_ids = tokenizer(prompt, return_tensors="pt").input_ids if prompt else torch.tensor([[tokenizer.eos_token_id]])
    context = model.config.max_position_embeddings
    if input_ids.shape[1] + args.max_new_tokens > context:
        raise ValueError(
            f"The prompt is {input_ids.shape[1]} tokens and --max_new_tokens is {args.max_new_tokens}, more than the "
            f"model's context window of {context} tokens: shorten the prompt or lower --max_new_tokens."
        )
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    output = model.generate(
        input_ids.to(args.device), attention_mask=torch.ones_like(input_ids, device=args.device),
        do_sample=True, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        max_new_tokens=args.max_new_tokens, pad_token_id=tokenizer.eos_token_id,
        streamer=TextStreamer(tokenizer, skip_special_tokens=True),
    )
    new_tokens = output.shape[1] - input_ids.shape[1]
    return f"\n[{new_tokens} tokens in {time.perf_counter() - started:.2f} s]"
