"""Load whatever `hfgen train` wrote - from a local folder or a Hub repo id - with errors that say what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from diffusers import DiffusionPipeline
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HFValidationError
from safetensors import SafetensorError

from .families import Family, family_of_folder, family_of_pipeline


def read_model_file(path: str, filename: str) -> dict[str, Any] | None:
    """A JSON file of a local model folder or Hub repo, or None when the model has no such file."""
    local = Path(path).expanduser()
    if local.is_dir():
        file = local / filename
        return json.loads(file.read_text()) if file.is_file() else None
    if local.exists() or path.startswith((".", "/", "~")) or path.count("/") != 1:
        raise FileNotFoundError(f"Model folder {path!r} does not exist: pass a folder written by `hfgen train` or a Hub repo id.")
    try:
        return json.loads(Path(hf_hub_download(path, filename)).read_text())
    except EntryNotFoundError:
        return None
    except HFValidationError as error:
        raise ValueError(f"{path!r} is neither a local folder nor a valid Hub repo id: {error}") from None


def read_model_index(path: str) -> dict[str, Any]:
    """model_index.json of a local folder or Hub repo, or a FileNotFoundError that says what to pass."""
    index = read_model_file(path, "model_index.json")
    if index is None:
        raise FileNotFoundError(
            f"{path!r} has no model_index.json: pass a folder written by `hfgen train` (or its Hub repo id)."
        )
    return index


def family_of_model(path: str) -> Family:
    """The family of the model saved at `path`: from its pipeline, or from a transformers config.json."""
    index = read_model_file(path, "model_index.json")
    config = None if index is not None else read_model_file(path, "config.json")
    if index is None and config is None:
        raise FileNotFoundError(
            f"{path!r} has no model_index.json (nor a transformers config.json): pass a folder written by `hfgen train` (or its Hub repo id)."
        )
    return family_of_folder(index, config)


def load_pipeline(path: str, **kwargs) -> DiffusionPipeline:
    """The hfgen pipeline saved at `path`, loaded from safetensors only (never pickles)."""
    class_name = read_model_index(path).get("_class_name")
    family = family_of_pipeline(str(class_name))
    pipeline_class = next(cls for cls in family.pipelines if cls.__name__ == class_name)
    try:
        return pipeline_class.from_pretrained(path, use_safetensors=True, **kwargs)
    except (OSError, SafetensorError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OSError(
            f"Could not load the weights in {path!r} ({first_line}): the folder is incomplete or a "
            "safetensors file is corrupt - re-run `hfgen train` or download the model again."
        ) from None
