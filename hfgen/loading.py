"""Load whatever `hfgen train` wrote - from a local folder or a Hub repo id - with errors that say what to do."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from diffusers import DiffusionPipeline
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HFValidationError
from safetensors import SafetensorError

# `_class_name` in model_index.json -> the hfgen class that loads it (diffusers only knows its own classes).
# Imported lazily so loading one family does not import the others.
PIPELINE_CLASSES: dict[str, str] = {
    "DiffusionImagePipeline": "hfgen.models.diffusion",
    "VAEPipeline": "hfgen.models.vae",
    "GANPipeline": "hfgen.models.gan",
    "PixelGPTPipeline": "hfgen.models.autoregressive",
}


def is_text_model(path: str) -> bool:
    """A local folder holding an hfgen text model: a transformers config.json of model_type hfgen_gpt, no pipeline."""
    local = Path(path).expanduser()
    config = local / "config.json"
    if not local.is_dir() or (local / "model_index.json").is_file() or not config.is_file():
        return False
    return json.loads(config.read_text()).get("model_type") == "hfgen_gpt"


def read_model_index(path: str) -> dict:
    """model_index.json of a local folder or Hub repo, or a FileNotFoundError that says what to pass."""
    local = Path(path).expanduser()
    if local.is_dir():
        index = local / "model_index.json"
        if not index.is_file():
            raise FileNotFoundError(
                f"{path!r} has no model_index.json: pass a folder written by `hfgen train` (or its Hub repo id)."
            )
        return json.loads(index.read_text())
    if local.exists() or path.startswith((".", "/", "~")) or path.count("/") != 1:
        raise FileNotFoundError(f"Model folder {path!r} does not exist: pass a folder written by `hfgen train` or a Hub repo id.")
    try:
        return json.loads(Path(hf_hub_download(path, "model_index.json")).read_text())
    except HFValidationError as error:
        raise ValueError(f"{path!r} is neither a local folder nor a valid Hub repo id: {error}") from None


def load_pipeline(path: str, **kwargs) -> DiffusionPipeline:
    """The hfgen pipeline saved at `path`, loaded from safetensors only (never pickles)."""
    class_name = read_model_index(path).get("_class_name")
    if class_name not in PIPELINE_CLASSES:
        raise ValueError(
            f"{path!r} holds a {class_name!r} pipeline, which hfgen does not provide: "
            f"expected one of {', '.join(PIPELINE_CLASSES)}."
        )
    pipeline_class = getattr(importlib.import_module(PIPELINE_CLASSES[class_name]), class_name)
    try:
        return pipeline_class.from_pretrained(path, use_safetensors=True, **kwargs)
    except (OSError, SafetensorError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OSError(
            f"Could not load the weights in {path!r} ({first_line}): the folder is incomplete or a "
            "safetensors file is corrupt - re-run `hfgen train` or download the model again."
        ) from None
