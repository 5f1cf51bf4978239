"""Writes that fail on a full disk say so in one line, and never leave a half-written folder behind."""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

# torch's zip writer reports a full disk as a RuntimeError ("unexpected pos ...", "file write failed"), not an
# OSError: a write error with less space left than the write needed (or this much, when unknown) is a full disk.
LOW_SPACE_BYTES = 64 * 2**20


class DiskFullError(OSError):
    def __init__(self, folder: Path, needed_bytes: int | None, what: str) -> None:
        needed = f" (needs about {_megabytes(needed_bytes)})" if needed_bytes else ""
        super().__init__(
            errno.ENOSPC,
            f"No space left on the disk of {str(folder)!r} to write {what}{needed}, {_megabytes(free_bytes(folder))} free: "
            f"free some space (or lower --checkpoints_total_limit), then resume with --resume_from_checkpoint latest.",
        )

    def __str__(self) -> str:
        return self.strerror


def free_bytes(folder: Path) -> int:
    """Free bytes on the filesystem that holds `folder` (or its nearest existing parent)."""
    folder = Path(folder).absolute()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


def ensure_space(folder: Path, needed_bytes: int, what: str) -> None:
    """Refuse a save up front when the disk clearly cannot hold it (one `statvfs`, cheap)."""
    if free_bytes(folder) < needed_bytes:
        raise DiskFullError(folder, needed_bytes, what)


@contextlib.contextmanager
def writing(folder: Path, what: str, needed_bytes: int | None = None, partial: Path | None = None) -> Iterator[None]:
    """Turn a full-disk failure inside the block into a `DiskFullError`, removing `partial` (a temporary folder
    the block was filling) on any failure so no half-written copy keeps filling the disk."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        disk_full = getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or free_bytes(folder) < (
            needed_bytes or LOW_SPACE_BYTES
        )
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
        if disk_full and not isinstance(error, DiskFullError):
            raise DiskFullError(folder, needed_bytes, what) from error
        raise


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
