"""`hfgen demo`: the Gradio Spaces, and the parts every family's demo shares.

A family names its demo in its `family.py` (`Family.demo = "module:function"`, imported only when launched);
the function takes a model path or Hub repo id and returns a `gr.Blocks`. This module resolves which model to
load, launches behind Gradio's queue, and gives the family demos their common pieces: bounded controls, PNG
outputs enlarged with nearest-neighbour (8x8 and 28x28 images are unreadable otherwise, and Gradio's default
WebP blurs them), and user errors shown as one-line `gr.Error` messages while the server keeps serving.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .families import family_names, get_family
from .training.arguments import require_model

if TYPE_CHECKING:
    import gradio as gr
    from PIL import Image

MODEL_ENV = "HFGEN_MODEL"
"""Environment variable naming the model a Space loads (a local folder or a Hub repo id)."""
DEFAULT_MODEL = "hfgen/{name}-digits"
"""Hub repo a Space loads when given no model: a model trained on the built-in digits."""
ZOO_DEMO = "hfgen.evaluation.zoo_demo:build_demo"
CONCURRENCY_LIMIT = 2
"""Requests computed at once per event: a free CPU Space has 2 vCPUs; the rest wait in the queue."""
QUEUE_SIZE = 64
"""Requests waiting beyond which new ones are refused at once rather than queued for minutes."""
MAX_FILE_SIZE = "2mb"
"""Largest upload accepted: the models see at most 32x32 pixels, so bigger files only cost memory."""
MAX_UPLOAD_SIDE = 2048
DISPLAY_SIDE = 320
"""Images are enlarged (nearest-neighbour, whole multiples) to at least this many pixels a side."""
MAX_SEED = 2**31 - 1
THEME_CSS = ".gradio-container {max-width: 1100px !important} img {image-rendering: pixelated}"
"""Browsers enlarge images to fit their frame: `pixelated` keeps model pixels square instead of smoothing them."""

logger = logging.getLogger(__name__)


@dataclass
class DemoArguments:
    model: str | None = field(
        default=None,
        metadata={"help": f"Model folder or Hub repo id (default: ${MODEL_ENV}, else {DEFAULT_MODEL}); for `zoo`, "
                  "the --output_dir of `hfgen zoo`."},
    )
    port: int | None = field(default=None, metadata={"help": "Port to serve on (default: 7860, or the next free one)."})
    host: str = field(default="127.0.0.1", metadata={"help": "Address to serve on; 0.0.0.0 opens it to the network."})

    def __post_init__(self) -> None:
        require_model("model", self.model)
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"--port must be in [1, 65535], got {self.port}.")


def demo_names() -> list[str]:
    """Every Space `hfgen demo` can launch: each family that declares a demo, then the zoo."""
    return [name for name in family_names() if get_family(name).demo] + ["zoo"]


def resolve_model(name: str, model: str | None = None) -> str:
    """The model a Space loads: the argument, else `$HFGEN_MODEL`, else the default Hub repo."""
    return model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL.format(name=name)


def space_model(app_file: str) -> str | None:
    """The model a Space's app.py serves: `$HFGEN_MODEL`, else the first of its card's `models:` (which
    `hfgen push-space --model` sets); None leaves it to `resolve_model`."""
    from huggingface_hub import SpaceCard

    readme = Path(app_file).with_name("README.md")
    models = SpaceCard.load(readme).data.models if readme.is_file() else None
    return os.environ.get(MODEL_ENV) or next(iter(models or []), None)


def build_demo(name: str, model: str | None = None) -> gr.Blocks:
    """The `gr.Blocks` of Space `name` (a family or `zoo`) for the model at `model` (see `resolve_model`)."""
    if name == "zoo":
        target = ZOO_DEMO
    elif name in family_names() and get_family(name).demo:
        target = get_family(name).demo
    else:
        raise ValueError(f"No demo called {name!r}: use one of {', '.join(demo_names())}.")
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(resolve_model(name, model))


def queued(demo: gr.Blocks) -> gr.Blocks:
    """Heavy work goes through the queue: `CONCURRENCY_LIMIT` at a time per event, at most `QUEUE_SIZE` waiting."""
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_SIZE)


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, **kwargs: Any) -> None:
    """Serve `demo` (blocking unless `prevent_thread_lock=True`). None leaves the choice to Gradio: its
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT variables (Spaces set them), else 127.0.0.1 and 7860 or the next free port."""
    queued(demo).launch(
        server_name=host, server_port=port, max_file_size=MAX_FILE_SIZE, css=THEME_CSS, footer_links=["api"],
        ssr_mode=False, **kwargs,
    )


# Building blocks of the family demos.


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
    """The uploaded image, refusing none and absurd sizes (the upload's byte size is bounded by `MAX_FILE_SIZE`)."""
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
