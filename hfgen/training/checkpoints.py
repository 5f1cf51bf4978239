"""Checkpoint folders that are never half-written: save under a hidden name, then rename.

`checkpoints/checkpoint-{step}` only ever appears complete (rename is atomic on one filesystem), so a run
killed at any moment leaves at worst a `.tmp-checkpoint-*` folder that resume ignores and the next save
removes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from accelerate import Accelerator

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "hfgen_state.json"


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and CHECKPOINT_PATTERN.match(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(CHECKPOINT_PATTERN.match(p.name).group(1)))


def resolve_checkpoint(spec: str, root: str | os.PathLike) -> Path | None:
    """`latest` -> newest complete checkpoint under `root` (None if there is none yet); else a folder path."""
    if spec == "latest":
        found = list_checkpoints(root)
        return found[-1] if found else None
    path = Path(spec)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(
            f"{spec!r} is not a complete hfgen checkpoint (no {STATE_FILE}): pass --resume_from_checkpoint latest "
            f"or a folder such as {Path(root) / 'checkpoint-500'}."
        )
    return path


def read_step(checkpoint: Path) -> int:
    return int(json.loads((checkpoint / STATE_FILE).read_text())["step"])


def save_checkpoint(accelerator: Accelerator, root: str | os.PathLike, step: int, keep: int | None) -> Path:
    """Save the full training state (all processes call this) and rotate to the newest `keep`."""
    root = Path(root)
    final, temporary = root / f"checkpoint-{step}", root / f".tmp-checkpoint-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    # Every rank must have written its RNG file before the folder is renamed or read.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (temporary / STATE_FILE).write_text(json.dumps({"step": step}))
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
