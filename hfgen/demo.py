"""The Gradio Spaces: which demo a Space name means, which model it serves, and how it is launched.

A family names its demo in its `family.py` (`Family.demo = "module:function"`, imported only when launched);
the function takes a model path or Hub repo id and returns a `gr.Blocks` built from the shared pieces in
`hfgen.widgets`. This module resolves the Space and its model and launches it behind Gradio's queue; `hfgen demo`
and every `spaces/<name>/app.py` call it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .families import family_names, get_family

if TYPE_CHECKING:
    import gradio as gr

MODEL_ENV = "HFGEN_MODEL"
"""Environment variable naming the model a Space loads (a local folder or a Hub repo id)."""
DEFAULT_MODEL = "hfgen/{name}-digits"
"""Hub repo a Space loads when given no model: a model trained on the built-in digits."""
ZOO_DEMO = "hfgen.zoo.space:build_demo"
CONCURRENCY_LIMIT = 2
"""Requests computed at once per event: a free CPU Space has 2 vCPUs; the rest wait in the queue."""
QUEUE_SIZE = 64
"""Requests waiting beyond which new ones are refused at once rather than queued for minutes."""
MAX_FILE_SIZE = "2mb"
"""Largest upload accepted: the models see at most 32x32 pixels, so bigger files only cost memory."""
THEME_CSS = ".gradio-container {max-width: 1100px !important} img {image-rendering: pixelated}"
"""Browsers enlarge images to fit their frame: `pixelated` keeps model pixels square instead of smoothing them."""


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
