"""The building blocks every family's Space shares: bounded controls, PNG outputs enlarged with nearest-neighbour
(8x8 and 28x28 images are unreadable otherwise, and Gradio's default WebP blurs them), and user errors shown as
one-line `gr.Error` messages while the server keeps serving."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    import gradio as gr
    from PIL import Image

MAX_UPLOAD_SIDE = 2048
DISPLAY_SIDE = 320
"""Images are enlarged (nearest-neighbour, whole multiples) to at least this many pixels a side."""
MAX_SEED = 2**31 - 1

logger = logging.getLogger(__name__)


def user_errors(function: Callable) -> Callable:
    """Show bad input (`ValueError`/`TypeError`, the messages hfgen's pipelines raise) as a `gr.Error`; log any other
    exception and show one short line, so a bug never reaches the user as a stack trace. Works for streaming
    (generator) handlers too."""
    import gradio as gr

    def translate(error: Exception) -> gr.Error:
        if isinstance(error, gr.Error):
            return error
        if isinstance(error, (ValueError, TypeError)):
            return gr.Error(str(error))
        logger.exception("demo handler %s failed", function.__name__)
        return gr.Error(f"Internal error ({type(error).__name__}); the server is still running - try other settings.")

    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def stream(*args: Any, **kwargs: Any):
            try:
                yield from function(*args, **kwargs)
            except Exception as error:
                raise translate(error) from None

        return stream

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any):
        try:
            return function(*args, **kwargs)
        except Exception as error:
            raise translate(error) from None

    return call


def image_output(label: str, height: int | None = 360, **kwargs: Any) -> gr.Image:
    """An output image sent as PNG (lossless: Gradio's WebP default smears 8x8 pixels)."""
    import gradio as gr

    return gr.Image(label=label, type="pil", format="png", interactive=False, buttons=["download"], height=height, **kwargs)


def gallery_output(label: str, columns: int = 8, **kwargs: Any) -> gr.Gallery:
    """Frames in order, each a PNG."""
    import gradio as gr

    return gr.Gallery(label=label, format="png", columns=columns, object_fit="contain", **kwargs)


def seed_input(value: int = 0, label: str = "seed") -> gr.Number:
    import gradio as gr

    return gr.Number(value=value, label=label, precision=0, minimum=0, maximum=MAX_SEED)


def seeded(seed: int | float | None) -> torch.Generator:
    """A CPU generator from a seed the user typed (Gradio has already bounded it)."""
    if seed is None:
        raise ValueError(f"Enter a seed (a whole number in [0, {MAX_SEED}]).")
    return torch.Generator("cpu").manual_seed(int(seed))


def enlarge(image: Image.Image, side: int = DISPLAY_SIDE) -> Image.Image:
    """Nearest-neighbour enlargement by a whole factor, so each model pixel stays a crisp square."""
    from PIL import Image

    scale = max(1, math.ceil(side / max(image.size)))
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def to_pil(images: torch.Tensor, side: int = DISPLAY_SIDE) -> list[Image.Image]:
    """(B, C, H, W) in [0, 1] (what every hfgen pipeline returns with `output_type="pt"`) -> enlarged PIL images."""
    from .images import postprocess

    return [enlarge(image, side) for image in postprocess(images * 2 - 1, "pil")]


def grid(images: torch.Tensor, cols: int | None = None) -> str:
    """(B, C, H, W) in [0, 1] -> one enlarged grid as a PNG file (hfgen's sample grid: thin grey borders between cells)."""
    from .images import image_grid

    side = images.shape[-1]
    cell = max(32, DISPLAY_SIDE // max(1, cols or math.ceil(math.sqrt(len(images)))))
    return png_file(enlarge(image_grid(images * 2 - 1, cols=cols, min_side=max(side, cell))))


def frames(images: torch.Tensor, captions: list[str] | None = None) -> list[str] | list[tuple[str, str]]:
    """(F, C, H, W) in [0, 1] -> enlarged PNG files for a `gr.Gallery`, with their captions when given."""
    files = [png_file(image) for image in to_pil(images)]
    return files if captions is None else list(zip(files, captions))


def png_file(image: Image.Image) -> str:
    """Save as PNG under a name made from its bytes and return the path, for an output component to serve.

    Why not return the PIL image: Gradio 6.31 caches an image output by rewriting `<hash of its bytes>/image.png`
    on every request, so two concurrent requests with the same result (the same seed) truncate the file while the
    other is being downloaded ("Too little data for declared Content-Length", measured by scripts/bench_spaces.py).
    A file is written once, atomically, and Gradio copies file outputs only when its cache lacks them.
    """
    import hashlib
    import io
    import tempfile

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    folder = Path(tempfile.gettempdir()) / "hfgen-demo"
    folder.mkdir(exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
        partial.write_bytes(data)
        partial.replace(path)
    return str(path)


def uploaded_image(image: Image.Image | None, what: str = "an image") -> Image.Image:
    """The uploaded image, refusing none and absurd sizes (the upload's byte size is bounded by `hfgen.demo.MAX_FILE_SIZE`)."""
    if image is None:
        raise ValueError(f"Upload or draw {what} first (PNG or JPEG).")
    if max(image.size) > MAX_UPLOAD_SIDE:
        raise ValueError(f"The image is {image.width}x{image.height}: upload one at most {MAX_UPLOAD_SIDE} pixels a side.")
    return image


def test_images(model: str, resolution: int, channels: int, limit: int = 512) -> tuple[torch.Tensor, list[int], list[str]]:
    """Up to `limit` images of the test split of the data the model was trained on (from its training_args.json):
    ((N, C, H, W) in [0, 1], labels, class names). Digits when the folder does not say."""
    from .data import images_to_tensor, load_image_dataset
    from .loading import read_model_file

    data = (read_model_file(model, "training_args.json") or {}).get("data", {})
    dataset = load_image_dataset(data.get("dataset", "digits"), "test", data.get("data_dir"))
    dataset = dataset.select(range(min(limit, len(dataset))))
    images = (images_to_tensor(list(dataset["image"]), resolution, channels) + 1) / 2
    if "label" in dataset.column_names:
        return images, list(dataset["label"]), list(dataset.features["label"].names)
    return images, [0] * len(dataset), ["image"]


def header(title: str, model: str, teaches: str) -> None:
    """The title, the model it serves and what the Space shows (call inside a `gr.Blocks`)."""
    import gradio as gr

    gr.Markdown(f"# {title}\n{teaches}\n\nModel: `{model}` · made with hfgen")
