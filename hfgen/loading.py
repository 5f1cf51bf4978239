"""Load whatever `hfgen train` wrote - from a local folder or a Hub repo id - with errors that say what to do.

Only safetensors are loaded: a model whose weights are pickles (`.bin`, `.pt`, ...) is refused before anything
is downloaded or unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError

from .families import Family, family_of_folder, pipeline_class_name, saved_pipeline_class
from .registration import hub_components

HUB_LOADABLE_PATTERNS = ["model_index.json", "*/*.json", "*/*.safetensors", "*/*.txt", "*/*.model"]
"""What loading a pipeline downloads: configs, weights, tokenizer files."""
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
"""Weight formats that load by unpickling: refused, never `torch.load`ed."""


def is_local(path: str) -> bool:
    """A local folder, or a path that means one (so a typo is not sent to the Hub as a repo id)."""
    local = Path(path).expanduser()
    return local.exists() or path.startswith((".", "/", "~")) or path.count("/") != 1


def hub_error(path: str, revision: str | None, looked_for: str, error: Exception) -> OSError:
    """The one-line error for a Hub request that failed, naming what was looked for and the fix."""
    where = f"{path!r} (revision {revision or 'main'!r}) on {constants.ENDPOINT}"
    if isinstance(error, RevisionNotFoundError):
        return OSError(f"Hub repo {path!r} has no revision {revision!r} (looked for {looked_for}): pass one of its branches, tags or commit ids.")
    if isinstance(error, RepositoryNotFoundError):
        return OSError(f"No Hub repo {path!r} on {constants.ENDPOINT} (looked for {looked_for}): check the repo id, or log in (`hf auth login` / HF_TOKEN) if it is private.")
    if isinstance(error, LocalEntryNotFoundError):
        return OSError(f"Could not reach the Hub for {looked_for} of {where}, and it is not cached: check the network or HF_ENDPOINT.")
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return OSError(f"The Hub refused {looked_for} of {where} ({first_line}).")


def read_model_file(path: str, filename: str, revision: str | None = None) -> dict[str, Any] | None:
    """A JSON file of a local model folder or Hub repo (at `revision`), or None when the model has no such file."""
    if is_local(path):
        local = Path(path).expanduser()
        if local.is_file():
            raise NotADirectoryError(
                f"Model folder {path!r} is a file, not a folder: pass the folder written by `hfgen train` that holds "
                f"model_index.json{f' ({str(local.parent)!r})' if local.name == 'model_index.json' else ''}."
            )
        if not local.is_dir():
            raise FileNotFoundError(f"Model folder {path!r} does not exist: pass a folder written by `hfgen train` or a Hub repo id.")
        if revision is not None:
            raise ValueError(f"--revision {revision!r} applies to Hub repo ids, not the local folder {path!r}.")
        file = local / filename
        return json.loads(file.read_text()) if file.is_file() else None
    try:
        return json.loads(Path(hf_hub_download(path, filename, revision=revision)).read_text())
    except LocalEntryNotFoundError as error:  # before EntryNotFoundError, its parent: "unreachable", not "absent"
        raise hub_error(path, revision, filename, error) from None
    except EntryNotFoundError:
        return None
    except HFValidationError as error:
        raise ValueError(f"{path!r} is neither a local folder nor a valid Hub repo id: {error}") from None
    except (HfHubHTTPError, OSError) as error:
        raise hub_error(path, revision, filename, error) from None


def read_model_index(path: str, revision: str | None = None) -> dict[str, Any]:
    """model_index.json of a local folder or Hub repo, or a FileNotFoundError that says what to pass."""
    index = read_model_file(path, "model_index.json", revision)
    if index is None:
        raise FileNotFoundError(
            f"{path!r} has no model_index.json: pass a folder written by `hfgen train` (or its Hub repo id)."
        )
    return index


def family_of_model(path: str, revision: str | None = None) -> Family:
    """The family of the model saved at `path`: from its pipeline, or from a transformers config.json."""
    index = read_model_file(path, "model_index.json", revision)
    config = None if index is not None else read_model_file(path, "config.json", revision)
    if index is None and config is None:
        raise FileNotFoundError(
            f"{path!r} has no model_index.json (nor a transformers config.json): pass a folder written by `hfgen train` (or its Hub repo id)."
        )
    return family_of_folder(index, config)


def model_files(path: str, revision: str | None = None) -> list[str]:
    """Every file of a local folder or Hub repo at `revision`, as repo-relative POSIX paths."""
    if is_local(path):
        root = Path(path).expanduser()
        return [file.relative_to(root).as_posix() for file in root.rglob("*") if file.is_file()]
    try:
        return HfApi().list_repo_files(path, revision=revision)
    except (HfHubHTTPError, OSError) as error:
        raise hub_error(path, revision, "its file list", error) from None


def check_component_weights(path: str, index: dict[str, Any], files: list[str]) -> None:
    """Every component with a model config has safetensors weights; pickles alone are refused, never loaded."""
    for component, spec in index.items():
        if component.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        inside = [file for file in files if file.startswith(f"{component}/")]
        if not inside:
            raise OSError(f"Could not load the weights in {path!r}: the {component}/ folder its model_index.json names is missing - copy or push the whole folder written by `hfgen train`.")
        if f"{component}/config.json" not in inside:
            continue  # a scheduler or tokenizer: configuration only, no weights
        if any(file.endswith(".safetensors") for file in inside):
            continue
        pickles = [file for file in inside if file.endswith(PICKLE_SUFFIXES)]
        if pickles:
            raise OSError(
                f"Could not load the weights in {path!r}: {component} has only pickled weights ({', '.join(pickles)}); hfgen loads safetensors only "
                "and never unpickles downloaded files - convert them with safetensors' `save_file` and push again."
            )
        raise OSError(f"Could not load the weights in {path!r}: no {component}/*.safetensors - the folder is incomplete; re-run `hfgen train` or copy or push the whole folder again.")


def download_model(repo_id: str, revision: str | None = None) -> str:
    """The loadable files of a Hub repo (configs and safetensors, never pickles or code) in the local cache.

    hfgen's installed classes serve the repo, so a `_class_name` given as diffusers' remote-code list loads too
    (diffusers' own download would look for that module on its community GitHub) and no repo code is fetched.
    """
    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=HUB_LOADABLE_PATTERNS)
    except (HfHubHTTPError, OSError) as error:
        raise hub_error(repo_id, revision, "its weights and configs", error) from None


def native_index(index: dict[str, Any]) -> dict[str, Any]:
    """An exported model_index.json as hfgen saves it: hfgen's installed classes instead of the repo's code."""
    native = dict(index) | {name: [cls.__module__, cls.__name__] for name, cls in hub_components(index).items()}
    if isinstance(index.get("_class_name"), list):
        native["_class_name"] = index["_class_name"][-1]
    return native


@contextmanager
def native_folder(folder: Path, index: dict[str, Any]) -> Iterator[Path]:
    """`folder` as hfgen saves it: itself, or for an exported one a temporary view - links to its files, and the
    native model_index.json - so that hfgen's installed classes load it and none of its code runs."""
    native = native_index(index)
    if native == index:
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="hfgen-native-") as view:
        for entry in folder.iterdir():
            if entry.name != "model_index.json" and entry.suffix != ".py":
                (Path(view) / entry.name).symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
        (Path(view) / "model_index.json").write_text(json.dumps(native, indent=2))
        yield Path(view)


def load_pipeline(
    path: str, revision: str | None = None, pipeline_class: type[DiffusionPipeline] | None = None, **kwargs
) -> DiffusionPipeline:
    """The hfgen pipeline saved at `path` (a folder, or a Hub repo id at `revision`), from safetensors only.

    `pipeline_class` (what `GANPipeline.from_pretrained` passes) must be the saved class or one of its bases. A repo
    pushed with remote code loads with hfgen's installed classes: its code is neither downloaded nor run.
    """
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path.strip():
        raise (ValueError if isinstance(path, str) else TypeError)(
            f"The model path must be a folder written by `hfgen train` or a Hub repo id (a non-empty string), got {path!r}."
        )
    if revision is not None and not isinstance(revision, str):
        raise TypeError(f"revision must be a branch, tag or commit id of a Hub repo (a string), got {revision!r}.")
    if pipeline_class is not None and not (isinstance(pipeline_class, type) and issubclass(pipeline_class, DiffusionPipeline)):
        raise TypeError(f"pipeline_class must be a pipeline class such as hfgen.GANPipeline, got {pipeline_class!r}.")
    if not kwargs.pop("use_safetensors", True):
        raise ValueError("hfgen loads safetensors only and never unpickles weights: drop use_safetensors=False.")
    for name in ("dtype", "torch_dtype"):  # diffusers would warn and load float32 instead
        if not isinstance(kwargs.get(name), (torch.dtype, dict, type(None))):
            raise TypeError(f"{name} must be a torch.dtype such as torch.float16 (or a dict of them per component), got {kwargs[name]!r}.")
    index = read_model_index(path, revision)
    class_name = pipeline_class_name(index)
    saved_class = saved_pipeline_class(index)
    if pipeline_class is not None and not issubclass(saved_class, pipeline_class):
        raise ValueError(
            f"{path!r} holds a {class_name}, not a {pipeline_class.__name__}: load it with {class_name}.from_pretrained or hfgen.load_pipeline."
        )
    check_component_weights(path, index, model_files(path, revision))
    folder = path if is_local(path) else download_model(path, revision)
    try:
        with native_folder(Path(folder).expanduser(), index) as loadable:
            # diffusers' own loader, bound to the saved class: its `from_pretrained` (HfgenPipeline's) leads back here
            pipe = DiffusionPipeline.from_pretrained.__func__(saved_class, loadable, use_safetensors=True, **kwargs)
    except (OSError, SafetensorError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OSError(
            f"Could not load the weights in {path!r} ({first_line}): the folder is incomplete or a "
            "safetensors file is corrupt - re-run `hfgen train` or download the model again."
        ) from None
    pipe.register_to_config(_name_or_path=path)
    return pipe
