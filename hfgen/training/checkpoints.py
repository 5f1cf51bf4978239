"""Checkpoint folders that are never half-written, and that load without unpickling anything but tensors.

`checkpoints/checkpoint-{step}` only ever appears complete (rename is atomic on one filesystem), so a run
killed at any moment leaves at worst a `.tmp-checkpoint-*` folder that resume ignores and the next save
removes. accelerate saves the models (safetensors), optimizers, and RNG states, and loads them back
with `torch.load(weights_only=True)`. The other stateful objects (EMA weights, the LR schedules, an objective's
counters) are saved here as `training_state_{i}.pt` and loaded with `weights_only=True` too - registered with
accelerate instead, its `load_custom_state` would unpickle them in full - so a checkpoint downloaded from the Hub
holds tensors, numbers and strings, and nothing that runs code when loaded.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from accelerate import Accelerator
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HfHubHTTPError

from ..loading import hub_error, is_local
from .disk import ensure_space, folder_bytes, writing

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
CHECKPOINTS_FOLDER = "checkpoints"
"""Where a training folder keeps its checkpoints, and a model repo's checkpoint branch too."""
CHECKPOINT_BRANCH = "checkpoints"
"""The Hub branch that holds a model repo's training state (`hfgen push --include_checkpoints`)."""
STATE_FILE = "hfgen_state.json"
# The file `from_pretrained` starts from (diffusers pipelines, transformers models): moved in last.
ENTRY_FILES = ("model_index.json", "config.json")


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and CHECKPOINT_PATTERN.match(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(CHECKPOINT_PATTERN.match(p.name).group(1)))


def resolve_checkpoint(spec: str, root: str | os.PathLike) -> Path | None:
    """`latest` -> newest complete checkpoint under `root` (None if there is none yet); a folder path; or a Hub repo
    id -> the newest checkpoint `hfgen push --include_checkpoints` put on its `CHECKPOINT_BRANCH`, downloaded."""
    if spec == "latest":
        found = list_checkpoints(root)
        return found[-1] if found else None
    if not is_local(spec):
        return download_checkpoint(spec)
    path = Path(spec)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(
            f"{spec!r} is not a complete hfgen checkpoint (no {STATE_FILE}): pass --resume_from_checkpoint latest, "
            f"a folder such as {Path(root) / 'checkpoint-500'}, or a Hub repo pushed with --include_checkpoints."
        )
    return path


def download_checkpoint(repo_id: str) -> Path:
    """The newest checkpoint on `repo_id`'s checkpoint branch, in the local Hub cache."""
    try:
        snapshot = snapshot_download(repo_id, revision=CHECKPOINT_BRANCH, allow_patterns=[f"{CHECKPOINTS_FOLDER}/*/*"])
    except (HfHubHTTPError, OSError) as error:
        raise hub_error(repo_id, CHECKPOINT_BRANCH, "its training state (push it with `hfgen push --include_checkpoints`)", error) from None
    found = list_checkpoints(Path(snapshot) / CHECKPOINTS_FOLDER)
    if not found:
        raise FileNotFoundError(f"Hub repo {repo_id!r} has no complete checkpoint on its {CHECKPOINT_BRANCH!r} branch: push one with `hfgen push FOLDER {repo_id} --include_checkpoints`.")
    return found[-1]


def read_state(checkpoint: Path) -> dict:
    """`{"step": ..., "batch_split": {...}, "run": {...}}` as written by `save_checkpoint` (older ones: step only)."""
    return json.loads((checkpoint / STATE_FILE).read_text())


def estimate_checkpoint_bytes(root: str | os.PathLike, parameter_bytes: int) -> int:
    """The newest checkpoint's size, or before the first one: weights + two AdamW moments + an EMA copy."""
    found = list_checkpoints(root)
    return folder_bytes(found[-1]) if found else 4 * parameter_bytes


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


T = TypeVar("T")


def custom_state_file(checkpoint: Path, index: int) -> Path:
    """Where the `index`-th stateful object's `state_dict` is saved (accelerate refuses its own naming,
    `custom_checkpoint_*`, for objects not registered with it)."""
    return checkpoint / f"training_state_{index}.pt"


def load_safely(checkpoint: Path, load: Callable[[], T]) -> T:
    """Run `load` (a `torch.load(weights_only=True)` somewhere), turning a refused unpickle into one line."""
    try:
        return load()
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[0]
        raise ValueError(
            f"Checkpoint {checkpoint} holds pickled objects other than tensors and numbers ({reason}); hfgen loads "
            "training state with torch.load(weights_only=True) and never unpickles anything else - a checkpoint "
            "hfgen wrote never needs it, so do not resume from this one."
        ) from None


def load_checkpoint(accelerator: Accelerator, checkpoint: Path, custom_objects: Sequence[Stateful]) -> None:
    """accelerate's state, then each custom object's `state_dict` from `custom_state_file`: tensors and plain
    values only, or a ValueError naming the checkpoint."""
    if any(checkpoint.glob("custom_checkpoint_*.pkl")):
        raise ValueError(
            f"Checkpoint {checkpoint} was written by an older hfgen, whose EMA and schedule state only loads by "
            "unpickling it in full, which hfgen no longer does: start fresh with --overwrite_output_dir."
        )
    load_safely(checkpoint, lambda: accelerator.load_state(str(checkpoint)))
    for index, stateful in enumerate(custom_objects):
        file = custom_state_file(checkpoint, index)
        stateful.load_state_dict(load_safely(checkpoint, lambda: torch.load(file, map_location="cpu", weights_only=True)))


def save_checkpoint(
    accelerator: Accelerator,
    root: str | os.PathLike,
    step: int,
    keep: int | None,
    state: dict,
    needed_bytes: int,
    custom_objects: Sequence[Stateful] = (),
) -> Path:
    """Save the full training state (all processes call this) and rotate to the newest `keep`.

    `state` (the run's identity, see `Trainer._run_state`) is stored beside the step so resume can refuse a
    checkpoint that cannot continue this run; `custom_objects` are saved for `load_checkpoint`. A full disk
    raises `DiskFullError` with the temporary folder gone and every older checkpoint untouched.
    """
    root = Path(root)
    final, temporary = root / f"checkpoint-{step}", root / f".tmp-checkpoint-{step}"
    what = f"checkpoint-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        ensure_space(root, needed_bytes, what)
        temporary.mkdir()
    accelerator.wait_for_everyone()
    with writing(root, what, needed_bytes, partial=temporary):
        accelerator.save_state(str(temporary))
        # Every rank must have written its RNG file before the folder is renamed or read.
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            for index, stateful in enumerate(custom_objects):
                torch.save(stateful.state_dict(), custom_state_file(temporary, index))
            (temporary / STATE_FILE).write_text(json.dumps({"step": step, **state}))
    if accelerator.is_main_process:
        if final.exists():  # re-saving a step after resuming from an older checkpoint
            stale = root / f".stale-checkpoint-{step}"
            shutil.rmtree(stale, ignore_errors=True)
            final.rename(stale)
            shutil.rmtree(stale)
        temporary.rename(final)
        for leftover in root.glob(".tmp-checkpoint-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if keep is not None:
            for old in list_checkpoints(root)[:-keep]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def publish(temporary: Path, destination: Path) -> None:
    """Move a complete folder written under `temporary` into `destination`, entry by entry (each rename atomic).

    The old entry file (`model_index.json` / `config.json`) goes first and the new one comes last, so
    `from_pretrained` on `destination` finds either no model or the complete new one - never a mix.
    """
    entries = sorted(temporary.iterdir(), key=lambda p: p.name in ENTRY_FILES)
    for name in ENTRY_FILES:
        (destination / name).unlink(missing_ok=True)
    for entry in entries:
        target = destination / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        entry.replace(target)
    temporary.rmdir()


@dataclass(frozen=True)
class BatchSplit:
    """How a global batch is split: per-process batch x processes x accumulation steps. Any split of the same global
    batch continues a run exactly (`hfgen.randomness`): this is what lets a checkpoint resume elastically."""

    train_batch_size: int
    num_processes: int
    gradient_accumulation_steps: int

    @property
    def global_batch(self) -> int:
        return self.train_batch_size * self.num_processes * self.gradient_accumulation_steps

    def __str__(self) -> str:
        return f"{self.train_batch_size} per process x {self.num_processes} processes x {self.gradient_accumulation_steps} accumulation steps"

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def advice(self, global_batch: int) -> str:
        """Which flags give `global_batch` on this many processes: change accumulation first, then the batch."""
        processes = self.num_processes
        if global_batch % processes:
            return f"{global_batch} does not split over {processes} processes; resume on a number of processes that divides it."
        if global_batch % (self.train_batch_size * processes) == 0:
            accumulation = global_batch // (self.train_batch_size * processes)
            return f"resume with --gradient_accumulation_steps {accumulation} (or another split with the same product)."
        if global_batch % (self.gradient_accumulation_steps * processes) == 0:
            batch = global_batch // (self.gradient_accumulation_steps * processes)
            return f"resume with --train_batch_size {batch} (or another split with the same product)."
        return f"resume with --train_batch_size {global_batch // processes} --gradient_accumulation_steps 1 (or another split with the same product)."


def check_resumable(checkpoint: Path, saved: dict, current: dict) -> None:
    """Refuse, in one line naming what differs, a checkpoint whose state (`read_state`) shows it cannot continue
    the `current` run (`{"batch_split": ..., "run": {...}}`) - instead of a `size mismatch` from inside torch. The
    split of the global batch may differ (elastic resume); the global batch may not."""
    saved_run, current_run = saved.get("run"), current["run"]
    if saved_run is not None:
        if saved_run.get("family") != current_run.get("family"):  # then every model option differs: name the family only
            saved_run, current_run = {"family": saved_run.get("family")}, {"family": current_run.get("family")}
        differences = [f"{key} {old!r} there, {new!r} now" for key, (old, new) in _differences(saved_run, current_run).items()]
        if differences:
            shown = "; ".join(differences[:4]) + (f"; and {len(differences) - 4} more" if len(differences) > 4 else "")
            raise ValueError(
                f"Checkpoint {checkpoint} belongs to another run ({shown}): resume with the options it was trained "
                f"with, or start fresh with --overwrite_output_dir."
            )
    saved_split, current_split = BatchSplit(**saved.get("batch_split", current["batch_split"])), BatchSplit(**current["batch_split"])
    if saved_split.global_batch != current_split.global_batch:
        raise ValueError(
            f"Checkpoint {checkpoint} was trained with a global batch of {saved_split} = {saved_split.global_batch}, "
            f"this run's is {current_split} = {current_split.global_batch}: {current_split.advice(saved_split.global_batch)}"
        )


def _differences(saved: dict, now: dict, prefix: str = "") -> dict[str, tuple]:
    """Flattened `key: (saved, now)` for every value that differs between two nested dicts."""
    found = {}
    for key in sorted(set(saved) | set(now)):
        old, new = saved.get(key), now.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found |= _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found[f"{prefix}{key}"] = (old, new)
    return found
